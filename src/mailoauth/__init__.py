"""mailoauth: OAuth2 for SMTP, IMAP and POP3 — a library, a service, a relay and a CLI.

The public surface is what ``__all__`` lists (``tests/unit/test_exports.py`` locks it);
everything else is internal and may change.
"""

from mailoauth.errors import (
    AuthorizationNeeded,
    ConfigError,
    InUseError,
    MailoauthError,
    NotFoundError,
    OAuthError,
    ProviderRejected,
    ProviderUnavailable,
    SecretKeyError,
    StoreError,
)
from mailoauth.models import (
    Grant,
    GrantStatus,
    IncomingSettings,
    Mailbox,
    OutgoingSettings,
    Provider,
    SaslMechanism,
)
from mailoauth.providers import (
    ClientAuthMethod,
    GrantType,
    ProviderKind,
    Security,
    Transport,
)
from mailoauth.secret import Secret

__version__ = "0.1.0"

__all__ = [
    "AuthorizationNeeded",
    "ClientAuthMethod",
    "ConfigError",
    "Grant",
    "GrantStatus",
    "GrantType",
    "InUseError",
    "IncomingSettings",
    "Mailbox",
    "MailoauthError",
    "NotFoundError",
    "OAuthError",
    "OutgoingSettings",
    "Provider",
    "ProviderKind",
    "ProviderRejected",
    "ProviderUnavailable",
    "SaslMechanism",
    "Secret",
    "SecretKeyError",
    "Security",
    "StoreError",
    "Transport",
    "__version__",
]
