"""The public surface is deliberate: this test fails when ``__all__`` drifts."""

import mailoauth


def test_public_api_is_exactly_this():
    assert sorted(mailoauth.__all__) == sorted(
        [
            "AuthorizationNeeded",
            "ClientAuthMethod",
            "ConfigError",
            "Grant",
            "GrantStatus",
            "GrantType",
            "InUseError",
            "IncomingSettings",
            "MailoauthError",
            "Mailbox",
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
    )


def test_every_exported_name_exists():
    for name in mailoauth.__all__:
        assert getattr(mailoauth, name) is not None
