"""``Grant``: the tokens a mailbox holds and what the token service last learned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mailoauth.errors import ConfigError
from mailoauth.models._fields import set_field
from mailoauth.secret import Secret
from mailoauth.validate import (
    check_name,
)


class GrantStatus(StrEnum):
    CONNECTED = "connected"
    NEEDS_AUTHORIZATION = "needs_authorization"
    ERROR = "error"  # a transient failure; the token service keeps retrying


# --- Grant --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Grant:
    """The tokens a mailbox holds and what the token service last learned about them.

    Only the two tokens are secret (sealed by the store). ``last_error`` is stored and shown
    as it is: whoever sets it must pass the provider's error text through redaction first.
    """

    mailbox: str
    status: GrantStatus = GrantStatus.CONNECTED
    access_token: Secret | None = None
    expires_at: datetime | None = None
    refresh_token: Secret | None = None
    token_type: str = "Bearer"
    scopes: tuple[str, ...] = ()
    authorized_as: str | None = None
    authorized_at: datetime | None = None
    refreshed_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    def __post_init__(self) -> None:
        check_name("mailbox", self.mailbox)
        set_field(self, "status", GrantStatus(self.status))
        set_field(self, "scopes", tuple(self.scopes))
        for name in ("expires_at", "authorized_at", "refreshed_at", "last_error_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ConfigError(name, "must carry a time zone", "use datetime.now(UTC)")
