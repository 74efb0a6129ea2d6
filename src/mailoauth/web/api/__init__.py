"""The REST API, ``/api/v1`` (to be built): everything the console does, for automation."""

from __future__ import annotations

from fastapi import FastAPI

from mailoauth.web.context import ServiceContext

__all__ = ["mount_api"]


def mount_api(app: FastAPI, context: ServiceContext) -> None:
    """Add the ``/api/v1`` routes to ``app``."""
