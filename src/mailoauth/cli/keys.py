"""``mailoauth generate-key`` and ``mailoauth rotate-key``: the key that encrypts secrets."""

from __future__ import annotations

import os

import typer

from mailoauth.cli.context import settings_of
from mailoauth.store import rotate_key
from mailoauth.store.crypto import SecretKey
from mailoauth.store.lifecycle import NEW_KEY_ENV_VAR as NEW_KEY_ENV

__all__ = ["register_key_commands"]


def register_key_commands(app: typer.Typer) -> None:
    @app.command("generate-key")
    def generate_key() -> None:
        """Print a new random key, for MAILOAUTH_SECRET_KEY."""
        typer.echo(SecretKey.generate().encode())

    @app.command("rotate-key")
    def rotate(ctx: typer.Context) -> None:
        """Re-encrypt every stored secret under a new key, in one transaction.

        With a key file, a new key is generated and the file replaced (crash-safe). With
        MAILOAUTH_SECRET_KEY, put the new key (from `mailoauth generate-key`) in
        MAILOAUTH_NEW_SECRET_KEY; afterwards set MAILOAUTH_SECRET_KEY to it.
        """
        settings = settings_of(ctx)
        new_text = os.environ.get(NEW_KEY_ENV)
        new_key = SecretKey.parse(new_text, NEW_KEY_ENV) if new_text else None
        key, count = rotate_key(settings, new_key)
        typer.echo(f"re-encrypted {count} stored secret(s) under key {key.key_id}")
        if settings.secret_key is not None:
            typer.echo(
                f"now set MAILOAUTH_SECRET_KEY to the value of {NEW_KEY_ENV} everywhere "
                "mailoauth runs; the old key no longer opens this database"
            )
        else:
            typer.echo(f"key file {settings.key_file} replaced; back it up")
