"""`sublim`: run the services, and work with tasks and executions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from sublim.cli import executions, gcp, tasks
from sublim.config import DEFAULT_URL, Settings, load_settings
from sublim.core import runner
from sublim.core.redaction import RedactingFilter, redact
from sublim.errors import SublimError

app = typer.Typer(
    name="sublim",
    help="Subliminal: tasks, executions and executors, on the embedded default or real engines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tasks.app)
app.add_typer(executions.app)
app.add_typer(gcp.app)
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", envvar="SUBLIM_CONFIG", help="TOML settings file")
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar="SUBLIM_STORE_URL", show_default=DEFAULT_URL, help="store URL"),
]
BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker", envvar="SUBLIM_BROKER_URL", show_default=DEFAULT_URL, help="broker URL"
    ),
]
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        envvar="SUBLIM_HOST",
        show_default="127.0.0.1",
        help="address the API listens on (elsewhere than loopback, tokens are required)",
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", envvar=["SUBLIM_PORT", "PORT"], show_default="8080", help="API port"),
]


def _failed(exc: SublimError) -> typer.Exit:
    """Print the error as one red line on stderr; the `typer.Exit` to raise."""
    # escaped: `pip install 'sublim[redis]'` must not lose `[redis]` as markup
    err.print(f"[red]error:[/red] {escape(redact(str(exc)))}")
    return typer.Exit(2)


def _settings(config: Path | None, **flags: Any) -> Settings:
    try:
        settings = load_settings(config, **flags)
    except SublimError as exc:
        raise _failed(exc) from exc
    handler = RichHandler(console=err, show_path=False)
    handler.addFilter(RedactingFilter())  # every line: URL passwords, the access log's ?token=
    logging.basicConfig(
        level=settings.log_level, format="%(name)s: %(message)s", handlers=[handler]
    )
    return settings


def _run(coro: Any, settings: Settings) -> None:
    try:
        runner.run(coro, settings.event_loop)
    except SublimError as exc:
        raise _failed(exc) from exc
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def up(
    executor: Annotated[
        str | None, typer.Option(help="also run this execution node (MODULE:NODE)")
    ] = None,
    demo: Annotated[int, typer.Option(help="enqueue this many example executions at start")] = 0,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    broker: BrokerOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Run everything in one process on the embedded default: the API, its background loops
    (and an executor)."""
    from sublim.cli.serve import serve_up  # lazily: the people's commands need no server

    settings = _settings(config, store_url=store, broker_url=broker, host=host, port=port)
    _run(serve_up(settings, executor, demo=demo), settings)


@app.command()
def api(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    broker: BrokerOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Run the HTTP API (with the updates consumer and the sweeper) until SIGTERM/SIGINT."""
    from sublim.cli.serve import serve_api

    settings = _settings(config, store_url=store, broker_url=broker, host=host, port=port)
    _run(serve_api(settings), settings)


@app.command("executor")
def executor_command(
    node: Annotated[str, typer.Argument(help="the execution node to run, as MODULE:NAME")],
    config: ConfigOpt = None,
    broker: BrokerOpt = None,
) -> None:
    """Run a user's execution node until SIGTERM/SIGINT (then drain gracefully)."""
    from sublim.cli.serve import load_node, serve_executor

    settings = _settings(config, broker_url=broker)  # validated; logging set up
    try:
        loaded = load_node(node, broker)
    except SublimError as exc:
        raise _failed(exc) from exc
    _run(serve_executor(loaded), settings)


@app.command()
def datastore(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    host: Annotated[
        str | None, typer.Option(help="address to listen on [env: SUBLIM_HOST; default: 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="port [env: SUBLIM_DATASTORE_PORT; default: 50051]")
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate chain: serve TLS [env: SUBLIM_DATASTORE_TLS_CERT]"),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM private key of --tls-cert [env: SUBLIM_DATASTORE_TLS_KEY]"),
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            help="PEM CA of client certificates: require one (mutual TLS) "
            "[env: SUBLIM_DATASTORE_TLS_CA]"
        ),
    ] = None,
) -> None:
    """Serve the store over gRPC (the Datastore service), for processes that reach it as
    grpc://HOST:PORT (or DATASTORE_ADDRESS=HOST:PORT). Beyond loopback it needs
    SUBLIM_DATASTORE_TOKEN, mutual TLS, or SUBLIM_DATASTORE_AUTH=platform."""
    from sublim.datastore.server import run_datastore

    settings = _settings(
        config,
        store_url=store,
        host=host,
        datastore_port=port,
        datastore_tls_cert=tls_cert,
        datastore_tls_key=tls_key,
        datastore_tls_ca=tls_ca,
    )
    _run(run_datastore(settings), settings)
