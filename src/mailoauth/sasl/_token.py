"""The exchange XOAUTH2 and OAUTHBEARER share (Google, "XOAUTH2 protocol"; RFC 7628 §3.2).

The client sends one message with the token. The server then either ends the exchange
(success, or a plain failure) or sends an *error challenge* (JSON) and waits: the client
must answer it - XOAUTH2 with an empty response, OAUTHBEARER with a single ``\\x01`` -
and the server then sends its final failure. Dovecot 2.3 does exactly this.
"""

from __future__ import annotations

from typing import ClassVar

from mailoauth.errors import RemoteProtocolError
from mailoauth.sasl.base import ClientMachine, ClientState
from mailoauth.sasl.events import Acknowledge, SaslFailure, Send, Step

__all__ = ["TokenClient"]


class TokenClient(ClientMachine):
    """A bearer-token mechanism; a subclass sets ``mechanism``, ``acknowledgement`` and
    builds ``_initial_response``."""

    acknowledgement: ClassVar[bytes]
    """What answers the error challenge."""

    def _on_challenge(self, challenge: bytes) -> Step:
        if self._state is ClientState.START:
            if challenge:
                raise RemoteProtocolError(
                    f"the server sent a {len(challenge)}-byte {self.mechanism} challenge "
                    "before the initial response, where only an empty one may come; "
                    f"it does not speak {self.mechanism} as specified"
                )
            self._state = ClientState.WAITING
            return Send(self._initial_response())
        if not challenge:
            raise RemoteProtocolError(
                f"the server sent an empty {self.mechanism} challenge after the token, "
                "where only an error challenge may come; it does not speak "
                f"{self.mechanism} as specified"
            )
        self._failure = SaslFailure.from_challenge(self.mechanism, challenge)
        self._state = ClientState.REJECTED
        return Acknowledge(self.acknowledgement, self._failure)

    def _hint(self, failure: SaslFailure | None) -> str:
        status = failure.status.lower() if failure else ""
        if status in ("insufficient_scope", "403"):
            scope = f" ({failure.scope})" if failure and failure.scope else ""
            return (
                f"the access token lacks the scope the server needs{scope}: "
                "add it to the provider's scopes and re-authorize the mailbox"
            )
        if status in ("invalid_request", "400"):
            return (
                "the server could not read the login: check the login name, or try the "
                "other mechanism (XOAUTH2 / OAUTHBEARER)"
            )
        return (
            "the access token was not accepted (expired, revoked, or issued for another "
            "account than the login name): check the login name, refresh the token, or "
            "re-authorize the mailbox"
        )
