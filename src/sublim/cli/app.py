"""`sublim`: run the services, and work with tasks and executions."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from sublim.cli.serve import load_node, serve_executor, serve_up
from sublim.config import Settings, load_settings
from sublim.errors import SublimError

app = typer.Typer(
    name="sublim",
    help="Subliminal: tasks, executions and executors, on the embedded default or real engines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", envvar="SUBLIM_CONFIG",
                                               help="TOML settings file")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="store URL [env: SUBLIM_STORE_URL; "
                                              "default: sqlite:///./sublim.db]")]
BrokerOpt = Annotated[str | None, typer.Option("--broker", help="broker URL [env: SUBLIM_BROKER_URL; "
                                               "default: sqlite:///./sublim.db]")]


def _settings(config: Path | None, **flags: Any) -> Settings:
    settings = load_settings(config, **flags)
    logging.basicConfig(
        level=settings.log_level, format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    return settings


def _run(coro: Any) -> None:
    try:
        asyncio.run(coro)
    except SublimError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def up(
    executor: Annotated[str | None, typer.Option(help="also run this execution node (MODULE:NODE)")] = None,
    demo: Annotated[int, typer.Option(help="enqueue this many example executions at start")] = 0,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    broker: BrokerOpt = None,
) -> None:
    """Run everything in one process on the embedded default (and an executor)."""
    settings = _settings(config, store_url=store, broker_url=broker)
    _run(serve_up(settings, executor, demo=demo))


@app.command("executor")
def executor_command(
    node: Annotated[str, typer.Argument(help="the execution node to run, as MODULE:NAME")],
    config: ConfigOpt = None,
    broker: BrokerOpt = None,
) -> None:
    """Run a user's execution node until SIGTERM/SIGINT (then drain gracefully)."""
    settings = _settings(config, broker_url=broker)
    try:
        loaded = load_node(node, broker)
    except SublimError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    _run(serve_executor(loaded))
