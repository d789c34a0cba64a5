"""What the people's commands share: the API's URL and token options, the client, and one
clear line (no traceback) with a distinct exit code for each kind of error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape

from sublim.cli.render import err
from sublim.client import TOKEN_ENV, URL_ENV, Client
from sublim.errors import (
    ApiError,
    ApiUnavailable,
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    SublimError,
    Unreachable,
)

#: Exit codes: a run that did not pass, bad usage or input, an API out of reach.
EXIT_FAILED_RUN = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar=URL_ENV, show_default=True, help="base URL of the Subliminal API"),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        show_default="none",
        help="bearer token, when the API requires one",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document instead of tables")]
LimitOpt = Annotated[
    int, typer.Option("--limit", min=1, max=1000, help="items per page", show_default=True)
]
AllOpt = Annotated[
    bool, typer.Option("--all", help="follow the cursors: list every match, page after page")
]
CursorOpt = Annotated[
    str | None, typer.Option("--cursor", help="start at this next_cursor of a previous list")
]


def exit_code_for(error: SublimError) -> int:
    if isinstance(error, Unreachable | ApiUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(error, NotFound | Conflict | InvalidInput | AuthError):
        return EXIT_USAGE
    return EXIT_FAILED_RUN


def _field_errors(error: ApiError) -> str:
    fields = [f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in error.errors]
    return f": {'; '.join(fields)}" if fields else ""


def message_of(error: SublimError) -> str:
    """The server's detail (and field errors) with the status, or the error's own message."""
    if isinstance(error, ApiError):
        detail = (error.detail or error.title) + _field_errors(error)
        return f"{detail} ({error.status_code} {error.title})"
    return str(error)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one red line on stderr; the `typer.Exit` to raise."""
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the error tree into one red line and its exit code."""
    try:
        yield
    except SublimError as error:
        raise fail(message_of(error), exit_code_for(error)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@contextmanager
def connected(url: str, token: str | None) -> Iterator[Client]:
    """A client of the API at `url`, inside `reported_errors`."""
    with reported_errors(), Client(url, token) as client:
        yield client
