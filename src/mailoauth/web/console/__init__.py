"""The admin console (to be built): server-rendered pages for admins."""

from __future__ import annotations

from fastapi import FastAPI

from mailoauth.web.context import ServiceContext

__all__ = ["mount_console"]


def mount_console(app: FastAPI, context: ServiceContext) -> None:
    """Add the console's pages to ``app``."""
