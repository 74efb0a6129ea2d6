"""SASL LOGIN - draft-murchison-sasl-login-00 (obsolete; kept for legacy software).

The server prompts twice and the client answers each prompt: first the user name, then
the password; there is no initial response and no authzid. The draft says the prompts
SHOULD be "User Name" and "Password" and that clients ignore them; deployed servers send
``Username:`` / ``Password:`` (base64 ``VXNlcm5hbWU6`` / ``UGFzc3dvcmQ6``) because one
widely used client insists, and so do we.

- :class:`LoginClient`: answers the two prompts, whatever they say.
- :class:`LoginServer` (the relay's side): hands out the prompts and returns the
  :class:`~mailoauth.sasl.events.Credentials`. SMTP clients may send the user name along
  with ``AUTH LOGIN`` (RFC 4954 §4 initial response): pass it as ``initial_response`` and
  the first prompt is the password's. A client's ``*`` (cancel) is the transport's to
  notice before anything reaches :meth:`LoginServer.receive`.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar, Final

from mailoauth.errors import LocalProtocolError, RemoteProtocolError
from mailoauth.sasl._checks import (
    PASSWORD_HINT,
    check_name,
    check_password,
    read_name,
    read_password,
)
from mailoauth.sasl.base import ClientMachine, ClientState
from mailoauth.sasl.events import Credentials, SaslFailure, Send, Step
from mailoauth.secret import Secret

__all__ = [
    "MECHANISM",
    "PASSWORD_PROMPT",
    "USERNAME_PROMPT",
    "LoginClient",
    "LoginServer",
    "LoginServerState",
]

MECHANISM: Final = "LOGIN"
USERNAME_PROMPT: Final = b"Username:"
PASSWORD_PROMPT: Final = b"Password:"


class LoginClient(ClientMachine):
    """One LOGIN login (see :mod:`mailoauth.sasl.base`): the first ``receive`` returns the
    user name, the second the password, a third is the server's protocol error."""

    mechanism: ClassVar[str] = MECHANISM
    supports_initial_response: ClassVar[bool] = False

    def __init__(self, user: str, password: Secret) -> None:
        check_name(MECHANISM, "user name", user)
        check_password(MECHANISM, password)
        super().__init__(user)
        self._password = password
        self._answered = 0

    def _on_challenge(self, challenge: bytes) -> Step:
        self._answered += 1
        if self._answered == 1:
            self._state = ClientState.WAITING
            return Send(check_name(MECHANISM, "user name", self._user))
        if self._answered == 2:
            return Send(check_password(MECHANISM, self._password))
        raise RemoteProtocolError(
            "the server sent a third LOGIN prompt; LOGIN has only the user name and the "
            "password prompts, so the server does not speak LOGIN as specified"
        )

    def _may_succeed(self, state: ClientState) -> bool:
        return state is ClientState.WAITING and self._answered == 2

    def _hint(self, failure: SaslFailure | None) -> str:
        return PASSWORD_HINT


class LoginServerState(Enum):
    NEW = "start() not called yet"
    USERNAME = "waiting for the user name"
    PASSWORD = "waiting for the password"
    DONE = "credentials returned"
    FAILED = "the client sent something LOGIN does not allow"


class LoginServer:
    """The server side of one LOGIN exchange: ``start()`` gives the first prompt, each
    ``receive(response)`` (raw bytes, after base64) the next prompt or the credentials.
    Checking them against the relay's users is the caller's job."""

    def __init__(self, initial_response: bytes | None = None) -> None:
        self._state = LoginServerState.NEW
        self._initial = initial_response
        self._authcid = ""

    def __repr__(self) -> str:
        return f"LoginServer(state={self._state.name})"

    @property
    def state(self) -> LoginServerState:
        return self._state

    def start(self) -> Send:
        """The first prompt: ``Username:``, or ``Password:`` after an initial response."""
        if self._state is not LoginServerState.NEW:
            raise LocalProtocolError("LOGIN start() comes first and only once")
        self._state = LoginServerState.USERNAME
        if self._initial is None:
            return Send(USERNAME_PROMPT)
        return self._take_user(self._initial)

    def receive(self, response: bytes) -> Send | Credentials:
        """The client's answer to the last prompt."""
        state = self._state
        if state in (LoginServerState.NEW, LoginServerState.DONE, LoginServerState.FAILED):
            raise LocalProtocolError(
                f"LOGIN receive() while {state.value}; call start() first, and make a "
                "new LoginServer for each exchange"
            )
        if state is LoginServerState.USERNAME:
            return self._take_user(response)
        self._state = LoginServerState.FAILED
        password = read_password(MECHANISM, response)
        self._state = LoginServerState.DONE
        return Credentials(authzid="", authcid=self._authcid, password=password)

    def _take_user(self, response: bytes) -> Send:
        self._state = LoginServerState.FAILED
        self._authcid = read_name(MECHANISM, "user name", response)
        self._state = LoginServerState.PASSWORD
        return Send(PASSWORD_PROMPT)
