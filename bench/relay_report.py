"""The relay benchmark's results: routes, cells, and the tables and summary it prints.

A cell is one scenario at one size and client count on one route: the client-side
result, the route's relay CPU during it and, for queue mode, when the upstream had every
message. Ratios are to the direct route of the same cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay_clients import Endpoint, Result
from relay_procs import Process

#: What a passthrough or IMAP relay column shows when this tree does not have it yet.
NOT_BUILT = "n/a (not built yet)"
#: The passthrough and IMAP relay targets of issue 5 (ratio to direct, at least).
TARGETS = {"steady": 0.9, "sessions": 0.5, "fetch": 0.9}


@dataclass
class Route:
    """One way to the upstream. ``process``: the relay whose CPU is measured."""

    key: str
    title: str
    smtp: Endpoint | None = None
    imap: Endpoint | None = None
    process: Process | None = None
    queued: bool = False
    missing: str | None = None  # why it cannot run (not built, not installed)


@dataclass
class Cell:
    result: Result | None = None
    cpu: float | None = None  # seconds of the relay process during the measurement
    delivered: float | None = None  # queue: seconds until the upstream had every message
    error: str | None = None


Table = dict[tuple[int, int], dict[str, Cell]]  # (size, clients) → path → cell


def size_label(size: int) -> str:
    return f"{size // 1000} KB" if size < 1_000_000 else f"{size / 1e6:g} MB"


WIDTH, QUEUE_WIDTH = 22, 40  # characters of a route's block in a row


def rated(cell: Cell, direct: Cell | None, *, queue: bool = False) -> str:
    """A route's block: rate, ratio to direct (queue: accepted and delivered), CPU."""
    if cell.error is not None:  # the start of it; all of it is printed at the end
        width = QUEUE_WIDTH if queue else WIDTH
        return f"{cell.error:<{width}.{width}}"
    assert cell.result is not None
    base = direct.result.rate if direct and direct.result and direct.result.rate else None

    def pair(value: float, width: int) -> str:
        ratio = f"{value / base:5.2f}x" if base else "     -"
        return f"{value:{width}.1f} {ratio}"

    ops = cell.result.ops
    cpu = f"{cell.cpu / ops * 1e3:6.2f}" if cell.cpu is not None and ops else "     -"
    if queue:
        delivered = ops / cell.delivered if cell.delivered else 0.0
        return f"{pair(cell.result.rate, 9)} {pair(delivered, 9)} {cpu}"
    return f"{pair(cell.result.rate, 8)} {cpu}"


def header(title: str, paths: list[Route], unit: str) -> None:
    print(f"\n{title}")
    print(f"  {unit}/s; ratio = route / direct in the same cell; CPU = relay process ms per op")
    first, second = f"  {'':<14}{'direct':>9} |", f"  {'':<14}{'rate':>9} |"
    for path in paths[1:]:
        if path.queued:
            first += f" {path.title:<{QUEUE_WIDTH}} |"
            second += f" {'accepted':>9} {'ratio':>6} {'delivered':>9} {'ratio':>6} {'CPU ms':>6} |"
        else:
            first += f" {path.title:<{WIDTH}.{WIDTH}} |"
            second += f" {'rate':>8} {'ratio':>6} {'CPU ms':>6} |"
    print(first.rstrip("|").rstrip())
    print(second.rstrip("|").rstrip())


def row(label: str, paths: list[Route], cells: dict[str, Cell]) -> str:
    """One cell's line: the direct rate, then each route's block (or why it is missing)."""
    direct = cells.get("direct")
    line = f"  {label:<14}"
    line += (
        f"{'error':>9} |"
        if direct is None or direct.result is None
        else f"{direct.result.rate:9.1f} |"
    )
    for path in paths[1:]:
        width = QUEUE_WIDTH if path.queued else WIDTH
        if path.missing:
            line += f" {path.missing:<{width}.{width}} |"
        else:
            line += f" {rated(cells[path.key], direct, queue=path.queued)} |"
    return line.rstrip("|").rstrip()


def ratios(table: Table, key: str, base: str = "direct") -> list[float]:
    """Per cell, the rate of route ``key`` over the rate of route ``base``."""
    found: list[float] = []
    for cells in table.values():
        cell, under = cells.get(key), cells.get(base)
        if cell and cell.result and under and under.result and under.result.rate:
            found.append(cell.result.rate / under.result.rate)
    return found


def per_op_ms(table: Table, key: str, size: int = 2000, count: int = 1) -> float | None:
    cell = table.get((size, count), {}).get(key)
    if cell is None or cell.result is None or cell.cpu is None or not cell.result.ops:
        return None
    return cell.cpu / cell.result.ops * 1e3


def span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}x" if values else "-"


def summary(paths: list[Route], tables: dict[str, Table], bursts: dict[str, Result]) -> None:
    print("\nSummary (ratio to direct, min-max over sizes and client counts; CPU of the relay)")
    for path in paths[1:]:
        if path.missing:
            print(f"  {path.title}: {path.missing}")
            continue
        parts = []
        for name, label in (("steady", "(a)"), ("sessions", "(b)"), ("fetch", "(c)")):
            if name in tables and ratios(tables[name], path.key):
                parts.append(f"{label} {span(ratios(tables[name], path.key))}")
        if (burst := bursts.get(path.key)) is not None:
            parts.append(f"burst failed {burst.failed}/{burst.ops + burst.failed}")
        message = per_op_ms(tables.get("steady", {}), path.key)
        session = per_op_ms(tables.get("sessions", {}), path.key)
        if message is not None:
            parts.append(f"CPU {message:.2f} ms/msg")
        if message is not None and session is not None:
            parts.append(f"+{max(session - message, 0):.2f} ms per login (b - a)")
        fetched = per_op_ms(tables.get("fetch", {}), path.key)
        if fetched is not None:
            parts.append(f"CPU {fetched:.2f} ms/fetch")
        print(f"  {path.title}: " + "; ".join(parts))
    for path in paths:
        if path.key not in ("passthrough", "imap") or path.missing:
            continue
        verdicts = []
        for name, target in TARGETS.items():
            found = ratios(tables.get(name, {}), path.key)
            if found:
                verdict = "met" if min(found) >= target else "MISSED"
                verdicts.append(f"{name} >= {target}x {verdict} (min {min(found):.3f}x)")
        if path.key in bursts:
            verdicts.append(f"burst 0 failed {'met' if bursts[path.key].failed == 0 else 'MISSED'}")
        print(f"  targets, {path.title}: " + "; ".join(verdicts))
        shares = [
            f"{label} {span(found)}"
            for name, label in (("steady", "(a)"), ("sessions", "(b)"), ("fetch", "(c)"))
            if (found := ratios(tables.get(name, {}), path.key, "forward"))
        ]
        if shares:
            print(f"  {path.title} / socat forward (the ceiling): " + "; ".join(shares))
