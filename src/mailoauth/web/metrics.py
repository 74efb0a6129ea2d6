"""``/metrics``: what the service did, in the Prometheus text exposition format (0.0.4).

=====================================================  =======  ==================================
metric                                                 type     meaning
=====================================================  =======  ==================================
``mailoauth_token_refreshes_total{result}``            counter  refresh-ahead runs by the
                                                                scheduler, ``ok`` / ``failed``
``mailoauth_fetches_total{result}``                    counter  scheduled fetches (polls)
``mailoauth_fetched_messages_total``                   counter  messages those fetches delivered
``mailoauth_sends_total{result}``                      counter  messages the queue drain sent
``mailoauth_queue_drains_total{result}``               counter  queue drain runs
``mailoauth_queue_depth``                              gauge    messages waiting in the queue
``mailoauth_mailboxes{state}``                         gauge    mailboxes by grant state:
                                                                connected, needs_authorization,
                                                                error, not_authorized
``mailoauth_scheduler_jobs_running``                   gauge    jobs running or waiting a slot
``mailoauth_scheduler_last_plan_timestamp_seconds``    gauge    last time the store was read
``mailoauth_relay_connections{protocol}``              gauge    relay connections open now
``mailoauth_relay_logins_total{protocol,result}``      counter  local logins to the relay:
                                                                ``ok``, ``refused``, ``locked``,
                                                                ``upstream`` (refused upstream)
``mailoauth_relay_messages_total{mode,result}``        counter  messages the SMTP relay took:
                                                                ``queued``, ``relayed``,
                                                                ``rejected``, ``failed``
=====================================================  =======  ==================================

Counters start at zero with the process. The mailbox gauge and the queue depth (queued +
being sent) read the store per scrape. A registry per call, never prometheus_client's
global one: no module-level state, and each app reports its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mailoauth.relay.counters import RelaySnapshot
from mailoauth.scheduler import Counters, GrantState, SchedulerStatus

__all__ = ["CONTENT_TYPE", "MetricsView", "render_metrics"]

#: The classic text format, which every Prometheus version reads (prometheus_client's own
#: fallback when the scraper asks for nothing else).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class MetricsView:
    """Everything one scrape shows, gathered by the route before rendering."""

    scheduler: SchedulerStatus | None
    mailboxes: Mapping[GrantState, int] | None  # None: the store could not be read
    queue_depth: int | None = None
    relay: RelaySnapshot | None = None  # None: no relay listener in this process


def _by_result(name: str, doc: str, ok: int, failed: int) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["result"])
    family.add_metric(["ok"], ok)
    family.add_metric(["failed"], failed)
    return family


def _counters(counts: Counters) -> Iterable[Metric]:
    yield _by_result(
        "mailoauth_token_refreshes",
        "Token refreshes the scheduler ran ahead of expiry.",
        counts.refreshes_ok,
        counts.refreshes_failed,
    )
    yield _by_result(
        "mailoauth_fetches",
        "Scheduled fetches of incoming mailboxes.",
        counts.fetches_ok,
        counts.fetches_failed,
    )
    yield CounterMetricFamily(
        "mailoauth_fetched_messages",
        "Messages delivered by scheduled fetches.",
        value=counts.messages_fetched,
    )
    yield _by_result(
        "mailoauth_sends", "Messages the queue drain sent.", counts.sends_ok, counts.sends_failed
    )
    yield _by_result(
        "mailoauth_queue_drains", "Queue drain runs.", counts.drains_ok, counts.drains_failed
    )


@dataclass(frozen=True, eq=False)  # the registry hashes collectors: by identity
class _Collector:
    view: MetricsView

    def collect(self) -> Iterable[Metric]:
        view = self.view
        yield from _counters(view.scheduler.counters if view.scheduler else Counters())
        if view.mailboxes is not None:
            family = GaugeMetricFamily(
                "mailoauth_mailboxes", "Mailboxes by grant state.", labels=["state"]
            )
            for state in GrantState:
                family.add_metric([state.value], view.mailboxes.get(state, 0))
            yield family
        if view.queue_depth is not None:
            yield GaugeMetricFamily(
                "mailoauth_queue_depth", "Messages waiting in the queue.", value=view.queue_depth
            )
        if view.scheduler is not None:
            yield GaugeMetricFamily(
                "mailoauth_scheduler_jobs_running",
                "Scheduler jobs running or waiting for a slot.",
                value=view.scheduler.running,
            )
            if (planned := view.scheduler.last_plan_at) is not None:
                yield GaugeMetricFamily(
                    "mailoauth_scheduler_last_plan_timestamp_seconds",
                    "When the scheduler last read the mailboxes (Unix time).",
                    value=planned.timestamp(),
                )
        if view.relay is not None:
            yield from _relay(view.relay)


def _relay(snapshot: RelaySnapshot) -> Iterable[Metric]:
    connections = GaugeMetricFamily(
        "mailoauth_relay_connections", "Relay connections open now.", labels=["protocol"]
    )
    for protocol, count in sorted(snapshot.connections.items()):
        connections.add_metric([protocol], count)
    yield connections
    logins = CounterMetricFamily(
        "mailoauth_relay_logins", "Local logins to the relay.", labels=["protocol", "result"]
    )
    for (protocol, result), count in sorted(snapshot.logins.items()):
        logins.add_metric([protocol, result], count)
    yield logins
    messages = CounterMetricFamily(
        "mailoauth_relay_messages", "Messages the SMTP relay took.", labels=["mode", "result"]
    )
    for (mode, result), count in sorted(snapshot.messages.items()):
        messages.add_metric([mode, result], count)
    yield messages


def render_metrics(view: MetricsView) -> bytes:
    """The text exposition of ``view`` (media type :data:`CONTENT_TYPE`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(view))
    return generate_latest(registry)
