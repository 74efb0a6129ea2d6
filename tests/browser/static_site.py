"""A tiny web site served by the test itself on 127.0.0.1, from a dict of path -> HTML.

It plays the Authorize popup's pattern without the service: ``/`` opens ``/consent`` in a
popup with ``window.open``; approving goes to ``/callback``, which tells its opener
"connected" with ``postMessage`` and closes itself — what the console's Authorize button
and the OAuth redirect endpoint do with a real provider between them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mailbox support</title></head>
<body>
<h1>Mailbox support</h1>
<p>State: <output id="state">needs authorization</output></p>
<button id="authorize" type="button">Authorize</button>
<script>
  document.getElementById("authorize").addEventListener("click", () => {
    window.open("/consent?state=s1", "mailoauth-authorize", "popup,width=480,height=640");
  });
  window.addEventListener("message", (event) => {
    if (event.origin !== window.location.origin) return;
    document.getElementById("state").textContent = event.data.state;
  });
</script>
</body></html>
"""

CONSENT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Consent</title></head>
<body>
<p>mailoauth wants to send mail as alice@example.com.</p>
<button id="approve" type="button">Approve</button>
<script>
  document.getElementById("approve").addEventListener("click", () => {
    window.location.assign("/callback?code=c1&state=s1");
  });
</script>
</body></html>
"""

CALLBACK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connected</title></head>
<body>
<p id="result">Connected as alice@example.com</p>
<script>
  window.opener.postMessage({state: "connected"}, window.location.origin);
  setTimeout(() => window.close(), 200);
</script>
</body></html>
"""

POPUP_SITE = {"/": OPENER, "/consent": CONSENT, "/callback": CALLBACK}


@contextmanager
def serving(pages: Mapping[str, str]) -> Iterator[str]:
    """Serve ``pages`` (path without query -> HTML) on a free port; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.partition("?")[0])
            payload = (body or "not found").encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no request lines on the test's stderr

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
