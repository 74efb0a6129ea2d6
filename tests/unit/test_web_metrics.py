"""``/metrics`` text: the names operators scrape, parsed back with prometheus_client's own
parser so a malformed exposition fails here, not in Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from mailoauth.relay.counters import RelayCounters
from mailoauth.scheduler import Counters, GrantState, SchedulerStatus
from mailoauth.web.metrics import CONTENT_TYPE, MetricsView, render_metrics


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_counters_gauges_and_states_in_the_text_format():
    status = SchedulerStatus(
        started_at=datetime(2030, 1, 1, tzinfo=UTC),
        counters=Counters(
            refreshes_ok=7, refreshes_failed=1, fetches_ok=4, fetches_failed=2, messages_fetched=9
        ),
        last_plan_at=datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC),
        running=3,
    )
    states = {GrantState.CONNECTED: 5, GrantState.NEEDS_AUTHORIZATION: 1}
    got = samples(render_metrics(MetricsView(status, states, queue_depth=12)))
    assert got[("mailoauth_token_refreshes_total", (("result", "ok"),))] == 7
    assert got[("mailoauth_token_refreshes_total", (("result", "failed"),))] == 1
    assert got[("mailoauth_fetches_total", (("result", "failed"),))] == 2
    assert got[("mailoauth_fetched_messages_total", ())] == 9
    assert got[("mailoauth_sends_total", (("result", "ok"),))] == 0
    assert got[("mailoauth_mailboxes", (("state", "connected"),))] == 5
    assert got[("mailoauth_mailboxes", (("state", "needs_authorization"),))] == 1
    assert got[("mailoauth_mailboxes", (("state", "not_authorized"),))] == 0
    assert got[("mailoauth_queue_depth", ())] == 12
    assert got[("mailoauth_scheduler_jobs_running", ())] == 3
    assert got[("mailoauth_scheduler_last_plan_timestamp_seconds", ())] == 1893456030
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_without_a_scheduler_queue_or_store_the_counters_still_report_zero():
    got = samples(render_metrics(MetricsView(None, None)))
    assert got[("mailoauth_fetches_total", (("result", "ok"),))] == 0
    assert not any(
        name.startswith(("mailoauth_mailboxes", "mailoauth_queue_depth")) for name, _ in got
    )
    assert ("mailoauth_scheduler_jobs_running", ()) not in got


def test_relay_connections_logins_and_messages_by_protocol_and_result():
    counters = RelayCounters()
    counters.opened("smtp")
    counters.opened("smtp")
    counters.closed("smtp")
    counters.opened("imap")
    counters.login("smtp", "ok")
    counters.login("smtp", "refused")
    counters.login("imap", "upstream")
    counters.message("queue", "queued")
    counters.message("queue", "queued")
    counters.message("passthrough", "rejected")
    got = samples(render_metrics(MetricsView(None, None, relay=counters.snapshot())))
    assert got[("mailoauth_relay_connections", (("protocol", "smtp"),))] == 1
    assert got[("mailoauth_relay_connections", (("protocol", "imap"),))] == 1
    assert got[("mailoauth_relay_logins_total", (("protocol", "smtp"), ("result", "ok")))] == 1
    assert (
        got[("mailoauth_relay_logins_total", (("protocol", "imap"), ("result", "upstream")))] == 1
    )
    assert got[("mailoauth_relay_messages_total", (("mode", "queue"), ("result", "queued")))] == 2
    assert (
        got[("mailoauth_relay_messages_total", (("mode", "passthrough"), ("result", "rejected")))]
        == 1
    )


def test_without_a_relay_no_relay_metrics():
    got = samples(render_metrics(MetricsView(None, None)))
    assert not any(name.startswith("mailoauth_relay") for name, _ in got)
