"""The client side all mechanisms here share: one state machine, no I/O (RFC 4422 §5).

A transport (SMTP ``AUTH``, IMAP ``AUTHENTICATE``, POP3 ``AUTH``) drives a client like
this, base64-ing what it sends and un-base64-ing what it reads (:mod:`.b64`)::

    client = XOAuth2Client(user, token)
    send(client.start())                  # or, without an initial response, wait for
    while server sends a challenge c:     # the empty challenge: receive(b"") answers it
        send(client.receive(c).data)
    client.finish(ok, final_reply)        # raises SaslError when ok is False

Transitions (h11 style: any other combination raises)::

    state     event                          next       result
    START     start()                        WAITING    the initial response
    START     receive(challenge)             WAITING    Send(...), per mechanism
    WAITING   receive(challenge)             WAITING    Send(...): LOGIN's password prompt
    WAITING   receive(error challenge)       REJECTED   Acknowledge(ack, failure): tokens
    WAITING   finish(True)                   SUCCEEDED
    open      finish(False)                  FAILED     raises SaslError
    REJECTED  receive(...) or finish(True)   FAILED     raises RemoteProtocolError
    open      a challenge the mechanism      FAILED     raises RemoteProtocolError
              does not allow
    closed    anything                       unchanged  raises LocalProtocolError

"open" is START, WAITING or REJECTED; "closed" is SUCCEEDED or FAILED. A client serves
one login; make a new one to try again.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar, Protocol

from mailoauth.errors import LocalProtocolError, RemoteProtocolError, SaslError
from mailoauth.sasl._checks import printable, quoted
from mailoauth.sasl.events import SaslFailure, Step

__all__ = ["ClientMachine", "ClientState", "SaslClient"]


class ClientState(Enum):
    START = "nothing sent yet"
    WAITING = "a response was sent; a challenge or the outcome comes next"
    REJECTED = "the server rejected the credentials; its final failure comes next"
    SUCCEEDED = "the server accepted the login"
    FAILED = "the login failed or the exchange broke"


_CLOSED = (ClientState.SUCCEEDED, ClientState.FAILED)


class SaslClient(Protocol):
    """What a transport needs from any client-side mechanism."""

    mechanism: ClassVar[str]
    supports_initial_response: ClassVar[bool]

    @property
    def state(self) -> ClientState: ...

    @property
    def failure(self) -> SaslFailure | None: ...

    def start(self) -> bytes: ...

    def receive(self, challenge: bytes) -> Step: ...

    def finish(self, success: bool, message: str = "", *, temporary: bool = False) -> None: ...


class ClientMachine:
    """Shared bookkeeping; a mechanism supplies ``_initial_response``, ``_on_challenge``
    and ``_hint``. ``user`` is shown in messages and ``repr``; secrets never are."""

    mechanism: ClassVar[str]
    supports_initial_response: ClassVar[bool] = True

    def __init__(self, user: str) -> None:
        self._user = user
        self._state = ClientState.START
        self._failure: SaslFailure | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user={self._user[:200]!r}, state={self._state.name})"

    @property
    def user(self) -> str:
        return self._user

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def failure(self) -> SaslFailure | None:
        """The server's parsed error challenge, once one arrived."""
        return self._failure

    def start(self) -> bytes:
        """The initial response (SASL-IR / ``AUTH MECH <response>``), raw bytes."""
        self._check_open("start()")
        if not self.supports_initial_response:
            raise LocalProtocolError(
                f"{self.mechanism} has no initial response; send the AUTH command alone "
                "and answer the server's prompts with receive()"
            )
        if self._state is not ClientState.START:
            raise LocalProtocolError(
                f"{self.mechanism} start() comes first and only once; "
                "it was already called or a challenge was answered"
            )
        data = self._initial_response()
        self._state = ClientState.WAITING
        return data

    def receive(self, challenge: bytes) -> Step:
        """Answer a server challenge (raw bytes, after base64)."""
        self._check_open("receive()")
        if self._state is ClientState.REJECTED:
            self._state = ClientState.FAILED
            raise RemoteProtocolError(
                f"the server sent another {self.mechanism} challenge after its error "
                "challenge was acknowledged, instead of ending the exchange with a failure; "
                "it does not follow the protocol, so close the connection"
            )
        try:
            return self._on_challenge(challenge)
        except RemoteProtocolError:
            self._state = ClientState.FAILED
            raise

    def finish(self, success: bool, message: str = "", *, temporary: bool = False) -> None:
        """Record the server's final reply. ``message`` is its text (``535 5.7.8 ...``),
        ``temporary`` whether it said "try again later". Raises
        :class:`~mailoauth.errors.SaslError` for a failure."""
        self._check_open("finish()")
        was = self._state
        self._state = ClientState.FAILED
        if not success:
            raise self._refused(message, temporary=temporary)
        if was is ClientState.REJECTED:
            raise RemoteProtocolError(
                f"the server reported {self.mechanism} success after rejecting the "
                "credentials in its error challenge; it does not follow the protocol, "
                "so treat the connection as unusable"
            )
        if not self._may_succeed(was):
            raise RemoteProtocolError(
                f"the server reported {self.mechanism} success before it received the "
                "credentials; it does not follow the protocol, so close the connection"
            )
        self._state = ClientState.SUCCEEDED

    # -- what a mechanism supplies -------------------------------------------------

    def _initial_response(self) -> bytes:
        raise NotImplementedError

    def _on_challenge(self, challenge: bytes) -> Step:
        raise NotImplementedError

    def _hint(self, failure: SaslFailure | None) -> str:
        raise NotImplementedError

    def _may_succeed(self, state: ClientState) -> bool:
        return state is ClientState.WAITING

    # -- helpers ---------------------------------------------------------------------

    def _check_open(self, call: str) -> None:
        if self._state in _CLOSED:
            raise LocalProtocolError(
                f"{self.mechanism} {call} after the exchange ended "
                f"({self._state.name.lower()}); make a new client for a new login"
            )

    def _refused(self, message: str, *, temporary: bool) -> SaslError:
        failure = self._failure
        said = printable(message.strip(), 300)
        who = f"{self.mechanism} login"
        if self._user:
            who += f" as {quoted(self._user)}"
        reply = f"; the server said '{said}'" if said else ""
        if temporary:
            text = (
                f"{who} failed for now{reply}; the server could not check the "
                "credentials at the moment: retry later"
            )
        else:
            detail = f" ({failure.describe()})" if failure else ""
            text = f"{who} was refused{detail}{reply}; {self._hint(failure)}"
        return SaslError(
            text,
            mechanism=self.mechanism,
            status=failure.status if failure else "",
            scope=failure.scope if failure else "",
            server_message=said,
            temporary=temporary,
        )
