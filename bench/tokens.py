"""Token service benchmark: prints figures, asserts nothing (run: python bench/tokens.py).

* cached ``get_access_token`` latency in microseconds (median, p99) — the cost every mail
  transport pays per connection;
* token requests issued for 1,000 concurrent callers on one expired mailbox (single
  flight: should be 1) and for 1,000 mailboxes refreshed at once (should be 1,000, then 0
  once cached);
* the same 1,000-mailbox burst's wall time.

The token endpoint is an in-process httpx transport that answers like a real server and
counts requests, so the figures measure mailoauth (store, locks, flows), not a network.
The store is SQLite in a temp directory, as in the embedded default.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mailoauth.config import Settings
from mailoauth.models import Mailbox, OutgoingSettings, Provider
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import GrantType, ProviderKind
from mailoauth.secret import Secret
from mailoauth.store import open_store

MAILBOXES = 1000


class Endpoint:
    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["client_credentials"]
        body = {"access_token": f"at-{self.requests}", "token_type": "Bearer", "expires_in": 3600}
        return httpx.Response(
            200, content=json.dumps(body), headers={"content-type": "application/json"}
        )


def setup(home: Path) -> object:
    store = open_store(Settings.load({}, data_dir=home))
    provider = Provider(
        name="idp",
        kind=ProviderKind.GENERIC,
        client_id="bench",
        client_secret=Secret("bench-secret"),
        token_url="https://idp.example/token",
    )
    mailboxes = [
        Mailbox(
            name=f"mb{i:04d}",
            provider="idp",
            login=f"mb{i}@example.com",
            grant=GrantType.CLIENT_CREDENTIALS,
            outgoing=OutgoingSettings(host="smtp.example.com"),
        )
        for i in range(MAILBOXES)
    ]
    store.apply([provider], mailboxes)
    return store


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = setup(Path(tmp))
        endpoint = Endpoint()
        async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
            service = TokenService(store, http)  # type: ignore[arg-type]

            start = endpoint.requests
            await asyncio.gather(*(service.get_access_token("mb0000") for _ in range(1000)))
            one_mailbox = endpoint.requests - start

            samples = []
            for _ in range(20000):
                t = time.perf_counter_ns()
                await service.get_access_token("mb0000")
                samples.append((time.perf_counter_ns() - t) / 1000)
            samples.sort()

            start, t0 = endpoint.requests, time.perf_counter()
            names = [f"mb{i:04d}" for i in range(1, MAILBOXES)]
            await asyncio.gather(*(service.get_access_token(n) for n in names))
            burst_s = time.perf_counter() - t0
            burst = endpoint.requests - start
            start = endpoint.requests
            await asyncio.gather(*(service.get_access_token(n) for n in names))
            again = endpoint.requests - start
        store.close()  # type: ignore[attr-defined]

    print(
        f"cached get_access_token: median {statistics.median(samples):.1f} us, "
        f"p99 {samples[int(len(samples) * 0.99)]:.1f} us ({len(samples)} calls)"
    )
    print(f"1000 concurrent callers, one expired mailbox: {one_mailbox} token request(s)")
    print(
        f"{len(names)} mailboxes at once: {burst} token requests in {burst_s:.2f} s "
        f"({len(names) / burst_s:.0f} mailboxes/s); again, cached: {again} requests"
    )


if __name__ == "__main__":
    asyncio.run(main())
