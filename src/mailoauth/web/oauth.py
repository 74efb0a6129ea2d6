"""The OAuth redirect endpoint, ``/oauth/callback`` (to be built)."""

from __future__ import annotations

from fastapi import FastAPI

from mailoauth.web.context import ServiceContext

__all__ = ["mount_oauth"]


def mount_oauth(app: FastAPI, context: ServiceContext) -> None:
    """Add ``/oauth/callback`` to ``app``."""
