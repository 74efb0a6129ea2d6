"""``python -m tests.peers.authserver --port N --state-dir DIR``: serve the test
authorization server on 127.0.0.1:N (never another address) with werkzeug's threaded
server until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from werkzeug.serving import make_server

from .app import create_app

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.peers.authserver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    server = make_server(HOST, args.port, create_app(args.state_dir, args.port), threaded=True)

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    print(f"authserver listening on http://{HOST}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
