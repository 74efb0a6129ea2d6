"""Driving a relay pre-auth machine (``protocols.preauth``) in a test: feed the client's
bytes, carry out every action, collect what came out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mailoauth.protocols.preauth import Login, NeedData, PreAuthServer, Send, StartTls


@dataclass
class Run:
    """What came out of feeding a machine: the bytes written, the logins asked for, and
    whether it closed or asked for TLS."""

    out: bytes = b""
    logins: list[Login] = field(default_factory=list)
    closed: bool = False
    tls: bool = False


def drive(server: PreAuthServer, chunks: tuple[bytes, ...], answer: Callable[[], bytes]) -> Run:
    """Feed ``chunks`` one by one, carrying out every action; each login is answered with
    ``answer()`` (the machine's accepted or refused reply)."""
    run = Run()
    for chunk in chunks:
        server.receive_data(chunk)
        while not isinstance(action := server.next_action(), NeedData):
            if isinstance(action, Send):
                run.out += action.data
                run.closed = run.closed or action.close
            elif isinstance(action, StartTls):
                run.out += action.reply
                run.tls = True
                server.tls_started()
            else:
                run.logins.append(action)
                run.out += answer()
    return run
