"""The `sublim` command."""

from __future__ import annotations

from sublim.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
