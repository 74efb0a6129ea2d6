"""Relay benchmark: mailoauth's relay and email-oauth2-proxy against going straight upstream.

Run ``.venv/bin/python bench/relay.py`` (a few minutes; ``--quick`` for a smoke run,
``--scenario``, ``--path``, ``--clients``, ``--sizes`` to narrow it, ``--no-emailproxy``
to leave email-oauth2-proxy out). Everything runs on 127.0.0.1, each part in its own
process so that CPU time is attributable:

* the upstream (``bench/relay_upstream.py``): a fast SMTP and IMAP server with implicit
  TLS (a trustme certificate made at run time) that checks the XOAUTH2 / OAUTHBEARER
  token against a fixed value, counts messages and drops them; and the token endpoint;
* ``mailoauth relay`` with its own temp data dir (SQLite), a mailbox on the upstream
  (password grant at the token endpoint) and relay users: ``queue`` mode (the default:
  committed before ``250``, then delivered) and, once built, ``passthrough``; plus the
  IMAP relay (``MAILOAUTH_RELAY_IMAP``) once built;
* email-oauth2-proxy (PyPI ``emailproxy``, installed into ``bench/.venv-emailproxy`` on
  first use), headless, ``oauth2_flow = password`` against the same token endpoint;
* **forward**: socat (Debian's, in C; skipped when not installed) copying bytes from a
  plain local port to the upstream's TLS port, no SMTP or IMAP logic at all — the cost of
  the extra hop itself, i.e. the most any relay process could reach on this machine;
* the clients (``bench/relay_clients.py``), in this process: raw asyncio SMTP / IMAP.

Paths: **direct** (clients → upstream over TLS with XOAUTH2), and through each relay
(clients → relay in the clear on loopback with a password, as legacy applications do;
relay → upstream over TLS with the token). Scenarios, for 1, 8 and 32 clients and 2 KB
and 200 KB messages: (a) ``steady``: log in once, send back to back; (b) ``sessions``:
connect, EHLO, AUTH, one message, QUIT, in sessions/s; ``burst``: 32 sessions started at
once, how many fail; (c) ``fetch``: IMAP ``UID FETCH`` of one message at a time.

Reading it: clients, relays and upstream share the machine's cores, so absolute rates
move from run to run; compare the **ratio to direct** of the same cell (direct runs just
before and just after the routes of a cell; its rate is over both runs). Queue mode shows
the accepted rate (what the client sees: each ``250`` follows a durable commit) and the
delivery rate (from the first message until the upstream had them all). ``CPU`` is the
relay process's own CPU time (``/proc``, all threads) per message, session or fetch —
delivery included for queue mode. A login or a burst session that takes more than
``--timeout`` (10 s) fails; the run exits 1 if mailoauth failed or lost a message
(email-oauth2-proxy's failures are listed, not fatal). Passthrough counts as not built
while the relay answers a passthrough user ``queued as``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import relay_clients as clients
import relay_procs as procs
from relay_clients import Endpoint, Mail, Result
from relay_report import NOT_BUILT, Cell, Route, Table, header, row, size_label, summary

TOKEN = "bench-access-token-" + os.urandom(12).hex()
SCENARIOS = ("steady", "sessions", "burst", "fetch")
PATHS = ("direct", "queue", "passthrough", "imap", "emailproxy", "forward")
LOCAL = "127.0.0.1"


Run = Callable[[clients.Mark], Coroutine[Any, Any, Result]]


class Bench:
    def __init__(self, args: argparse.Namespace, upstream: procs.Upstream) -> None:
        self.args, self.upstream = args, upstream
        self.runner = asyncio.Runner()
        self.problems: list[str] = []  # the benchmark or mailoauth broke: exit status 1
        self.failures: list[str] = []  # email-oauth2-proxy's errors

    def measure(
        self, path: Route, run: Run, where: str, *, smtp: bool, deliver_wait: float = 120
    ) -> Cell:
        """Run one cell on ``path``; for SMTP check the upstream got every message (for
        queue mode: wait until it has, which is the delivery time)."""
        before = self.upstream.stats().get("smtp_messages", 0)
        marks: dict[str, float] = {}

        def mark() -> None:
            marks["t"] = time.perf_counter()
            marks["cpu"] = path.process.cpu() if path.process else 0.0

        try:
            result = self.runner.run(run(mark))
        except Exception as exc:  # reported in the table and at the end
            text = clients.describe(exc)
            # email-oauth2-proxy failing under load is a finding, not a broken benchmark
            found = self.failures if path.key == "emailproxy" else self.problems
            found.append(f"{path.title}, {where}: {text}")
            return Cell(error=text)
        cell = Cell(result)
        if smtp:
            expected, got = before + result.ops, 0
            deadline = time.monotonic() + (deliver_wait if path.queued else 5)
            while (got := self.upstream.stats().get("smtp_messages", 0)) < expected:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            if path.queued:
                cell.delivered = time.perf_counter() - marks["t"]
            if got != expected and not result.failed:
                self.problems.append(
                    f"{path.title}: {result.ops} messages accepted, upstream got {got - before}"
                )
        if path.process is not None:
            cell.cpu = path.process.cpu() - marks["cpu"]
        return cell


# -- the scenarios --------------------------------------------------------------------------


def cells_of(
    bench: Bench, paths: list[Route], run_on: Callable[[Route], Run | None], where: str, smtp: bool
) -> dict[str, Cell]:
    """One cell on every route that can run it. Direct runs first and again last, and its
    rate is over both runs: the routes' ratios are to the machine as it was around them."""
    cells: dict[str, Cell] = {}
    runnable = [(p, run) for p in paths if not p.missing and (run := run_on(p)) is not None]
    for path, run in runnable:
        cells[path.key] = bench.measure(path, run, where, smtp=smtp)
    if runnable and runnable[0][0].key == "direct" and len(runnable) > 1:
        first, again = (
            cells["direct"],
            bench.measure(runnable[0][0], runnable[0][1], where, smtp=smtp),
        )
        if first.result and again.result:
            both = Result(
                first.result.ops + again.result.ops,
                first.result.seconds + again.result.seconds,
                first.result.size,
            )
            cells["direct"] = Cell(both)
    return cells


def smtp_table(bench: Bench, paths: list[Route], name: str, title: str, unit: str) -> Table:
    scenario = clients.steady if name == "steady" else clients.sessions
    header(title, paths, unit)
    results: Table = {}
    for size in bench.args.sizes:
        mail = Mail(size)
        for count in bench.args.clients:

            def run_on(path: Route, n: int = count, m: Mail = mail) -> Run | None:
                if path.smtp is None:
                    return None
                return partial(scenario, path.smtp, m, n, bench.args.seconds)

            where = f"({'a' if name == 'steady' else 'b'}) {size_label(size)} x{count}"
            cells = results[(size, count)] = cells_of(bench, paths, run_on, where, smtp=True)
            print(row(f"{size_label(size)} x{count}", paths, cells), flush=True)
    return results


def burst_line(bench: Bench, paths: list[Route]) -> dict[str, Result]:
    bursts: dict[str, Result] = {}
    count, deadline = bench.args.burst, bench.args.timeout
    print(f"\n  {count} simultaneous connects, 2 KB, each session due within {deadline:g} s:")
    mail = Mail(2000)
    for path in paths:
        if path.missing or path.smtp is None:
            print(f"    {path.title:<28} {path.missing}")
            continue
        run = partial(clients.burst, path.smtp, mail, count)
        cell = bench.measure(path, run, "burst", smtp=True, deliver_wait=30)
        if cell.result is None:
            print(f"    {path.title:<28} error: {cell.error}")
            continue
        r = bursts[path.key] = cell.result
        print(f"    {path.title:<28} failed {r.failed}/{count}, slowest session {r.slowest:.2f} s")
    return bursts


def fetch_table(bench: Bench, paths: list[Route]) -> Table:
    header("(c) IMAP: log in once, UID FETCH BODY.PEEK[] of one message at a time", paths, "msgs")
    results: Table = {}
    for size in bench.args.sizes:
        folder, stored = f"bench-{size}", bench.args.folder_count[size]
        for count in bench.args.clients:

            def run_on(path: Route, n: int = count, f: str = folder, k: int = stored) -> Run | None:
                if path.imap is None:
                    return None
                return partial(clients.fetch, path.imap, f, k, n, bench.args.seconds)

            where = f"(c) {size_label(size)} x{count}"
            cells = results[(size, count)] = cells_of(bench, paths, run_on, where, smtp=False)
            direct = cells.get("direct")
            mb = (
                f" ({direct.result.rate * direct.result.size / 1e6:.1f} MB/s direct)"
                if direct and direct.result
                else ""
            )
            print(row(f"{size_label(size)} x{count}", paths, cells) + mb, flush=True)
    return results


# -- set-up ---------------------------------------------------------------------------------


def mailoauth_routes(
    tmp: Path, upstream: procs.Upstream, certs: procs.Certs, started: list[procs.Process]
) -> list[Route]:
    """``mailoauth relay`` started, and its queue, passthrough and IMAP routes (a part
    not built yet in this tree is marked so)."""
    passthrough, imap = procs.passthrough_built(), procs.imap_relay_built()
    relay = procs.start_mailoauth(tmp, upstream, certs, passthrough=passthrough, imap=imap)
    started.append(relay.process)
    users, process = relay.users, relay.process
    queue = Route("queue", "mailoauth queue", process=process, queued=True)
    queue.smtp = Endpoint("queue", LOCAL, relay.smtp, "bench-queue", users["bench-queue"], False)
    live = Route("passthrough", "mailoauth passthrough", process=process, missing=NOT_BUILT)
    if passthrough:
        live.smtp = Endpoint("live", LOCAL, relay.smtp, "bench-live", users["bench-live"], False)
        live.missing = None
    imap_route = Route("imap", "mailoauth IMAP relay", process=process, missing=NOT_BUILT)
    if relay.imap is not None:
        imap_route.imap = Endpoint(
            "imap", LOCAL, relay.imap, "bench-queue", users["bench-queue"], False
        )
        imap_route.missing = None
    return [queue, live, imap_route]


def emailproxy_route(
    args: argparse.Namespace,
    tmp: Path,
    upstream: procs.Upstream,
    certs: procs.Certs,
    started: list[procs.Process],
) -> Route:
    """email-oauth2-proxy installed (if needed) and started, unless left out."""
    proxy = Route("emailproxy", "email-oauth2-proxy")
    if args.no_emailproxy or "emailproxy" not in args.path:
        proxy.missing = "left out"
    elif (error := procs.install_emailproxy()) is not None:
        proxy.missing = "n/a (pip install failed)"
        print(f"email-oauth2-proxy not installed: {error}")
    else:
        ep = procs.start_emailproxy(tmp, upstream, certs)
        started.append(ep.process)
        proxy.process = ep.process
        login = procs.MAILBOX_LOGIN
        proxy.smtp = Endpoint("proxy", LOCAL, ep.smtp, login, procs.PROXY_PASSWORD, False)
        proxy.imap = Endpoint("proxy", LOCAL, ep.imap, login, procs.PROXY_PASSWORD, False)
    return proxy


def forward_route(
    args: argparse.Namespace, tmp: Path, upstream: procs.Upstream, started: list[procs.Process]
) -> Route:
    """socat's byte forwarding (see the module docstring): the client logs in with the
    token, as direct. No CPU column: socat runs a process per connection."""
    forward = Route("forward", "socat forward (ceiling)")
    if "forward" not in args.path:
        forward.missing = "left out"
        return forward
    found = procs.start_forwarder(tmp, upstream)
    if isinstance(found, str):
        forward.missing = found
        return forward
    started.extend(found.processes)
    login = procs.MAILBOX_LOGIN
    forward.smtp = Endpoint("forward", LOCAL, found.smtp, login, TOKEN, True)
    forward.imap = Endpoint("forward", LOCAL, found.imap, login, TOKEN, True)
    return forward


def build_paths(
    args: argparse.Namespace,
    tmp: Path,
    upstream: procs.Upstream,
    certs: procs.Certs,
    started: list[procs.Process],
) -> list[Route]:
    """direct, and each relay asked for, started (``started`` gets their processes)."""
    tls = ssl.create_default_context(cafile=str(certs.ca))
    login = procs.MAILBOX_LOGIN
    direct = Route("direct", "direct")
    direct.smtp = Endpoint("direct", LOCAL, upstream.smtp, login, TOKEN, True, tls)
    direct.imap = Endpoint("direct", LOCAL, upstream.imap, login, TOKEN, True, tls)
    paths = [direct]
    if {"queue", "passthrough", "imap"} & set(args.path):
        paths += mailoauth_routes(tmp, upstream, certs, started)
    paths.append(emailproxy_route(args, tmp, upstream, certs, started))
    paths.append(forward_route(args, tmp, upstream, started))
    for path in paths:
        path.smtp = path.smtp and replace(path.smtp, timeout=args.timeout)
        path.imap = path.imap and replace(path.imap, timeout=args.timeout)
    return [p for p in paths if p.key == "direct" or p.key in args.path]


async def first_session(
    endpoint: Endpoint, mail: Mail, replies: list[bytes], mark: clients.Mark
) -> Result:
    mark()
    replies.append(await clients.one_session(endpoint, mail))
    return Result(1, 0.0)


def warm_up(bench: Bench, paths: list[Route]) -> None:
    """One session per path (token requests, email-oauth2-proxy's first login, caches);
    a passthrough relay that answers ``queued as`` is not built yet, whatever it accepts."""
    mail = Mail(2000)
    for path in paths:
        if path.missing:
            continue
        replies: list[bytes] = []
        if path.smtp is not None:
            run = partial(first_session, path.smtp, mail, replies)
            cell = bench.measure(path, run, "warm-up", smtp=True)
            if cell.error:
                path.missing = "error (see below)"
            elif path.key == "passthrough" and b"queued as" in replies[0]:
                path.missing = NOT_BUILT
                print("note: the relay queued a passthrough user's message: passthrough not built")
        if path.imap is not None and not path.missing:
            examine = partial(clients.fetch, path.imap, f"bench-{bench.args.sizes[0]}", 1, 1, 0)
            if bench.measure(path, examine, "warm-up", smtp=False).error:
                path.missing = "error (see below)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short cells: a smoke run")
    parser.add_argument("--seconds", type=float, help="duration of one cell (default 2, quick 0.1)")
    parser.add_argument(
        "--scenario", default=",".join(SCENARIOS), help=f"some of {','.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--path", default=",".join(PATHS[1:]), help=f"some of {','.join(PATHS[1:])}"
    )
    parser.add_argument("--clients", help="concurrent clients per cell (1,8,32; quick 1,8)")
    parser.add_argument("--burst", type=int, default=32, help="sessions started at once")
    parser.add_argument("--sizes", default="2000,200000", help="message sizes in bytes")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds a login or burst session may take"
    )
    parser.add_argument("--no-emailproxy", action="store_true", help="leave email-oauth2-proxy out")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (0.1 if args.quick else 2.0)
    args.clients = [
        int(n) for n in (args.clients or ("1,8" if args.quick else "1,8,32")).split(",")
    ]
    args.sizes = [int(n) for n in args.sizes.split(",")]
    args.scenario = [s.strip() for s in args.scenario.split(",")]
    args.path = [p.strip() for p in args.path.split(",")]
    for name in args.scenario + args.path:
        if name not in SCENARIOS + PATHS:
            parser.error(f"unknown scenario or path {name!r}")
    stored = 20 if args.quick else 100
    args.folder_count = {size: max(5, min(stored, 4_000_000 // size)) for size in args.sizes}
    return args


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), load average {load}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mailoauth-bench-relay-"))
    started: list[procs.Process] = []
    print(__doc__.split("\n\n")[0])
    print(f"machine: {machine()}; one cell = {args.seconds:g} s; ratios are from this one run")
    try:
        certs = procs.make_certs(tmp)
        folders = [f"{size}:{count}" for size, count in args.folder_count.items()]
        upstream = procs.start_upstream(tmp, certs, TOKEN, folders)
        started.append(upstream.process)
        paths = build_paths(args, tmp, upstream, certs, started)
        bench = Bench(args, upstream)
        warm_up(bench, paths)
        tables: dict[str, Table] = {}
        bursts: dict[str, Result] = {}
        smtp_paths = [p for p in paths if p.key != "imap"]
        imap_paths = [p for p in paths if p.key in ("direct", "imap", "emailproxy", "forward")]
        if "steady" in args.scenario:
            title = "(a) steady SMTP: log in once, then messages back to back"
            tables["steady"] = smtp_table(bench, smtp_paths, "steady", title, "msgs")
        if "sessions" in args.scenario:
            title = "(b) one connection per mail: connect, EHLO, AUTH, one message, QUIT"
            tables["sessions"] = smtp_table(bench, smtp_paths, "sessions", title, "sessions")
        if "burst" in args.scenario:
            bursts = burst_line(bench, smtp_paths)
        if "fetch" in args.scenario:
            tables["fetch"] = fetch_table(bench, imap_paths)
        summary(paths, tables, bursts)
        got = upstream.stats()
        print(
            f"\nupstream: {got.get('smtp_messages', 0)} messages, {got.get('smtp_logins', 0)} SMTP"
            f" and {got.get('imap_logins', 0)} IMAP logins, {got.get('token_requests', 0)} token"
            f" requests, {got.get('auth_failures', 0)} refused logins"
        )
        print(f"machine after: {machine()}")
        for process in started:
            if process.name == "mailoauth relay" and (errors := process.errors()):
                bench.problems += [f"{len(errors)} errors in the relay's log, first: {errors[0]}"]
        bench.runner.close()
        for failure in bench.failures:
            print(f"failed: {failure}")
        for problem in bench.problems:
            print(f"problem: {problem}")
        return 1 if bench.problems or got.get("auth_failures", 0) else 0
    finally:
        for process in reversed(started):
            process.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
