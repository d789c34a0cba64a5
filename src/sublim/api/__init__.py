"""The HTTP API: a thin FastAPI layer over `sublim.core.service.Service`."""

from __future__ import annotations

from sublim.api.app import create_app

__all__ = ["create_app"]
