"""`sublim gcp provision`: Pub/Sub topics and subscriptions for a Subliminal deployment."""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sublim.config import load_settings
from sublim.errors import ConfigError

if TYPE_CHECKING:  # the google-cloud-pubsub client is imported only when provisioning
    from sublim.gcp.provision import Plan, Report

#: What provisioning imports, from the `gcp` extra.
GCP_MODULES = ("google.api_core.exceptions", "google.pubsub_v1")

app = typer.Typer(name="gcp", help="Google Cloud: provision Pub/Sub.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

IAM_NOTE = (
    "On Google Cloud, dead letters and OIDC pushes also need IAM grants to the Pub/Sub "
    "service agent (service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com): "
    "roles/pubsub.publisher on each *-dlq topic, roles/pubsub.subscriber on each subscription "
    "with dead letters, and roles/iam.serviceAccountTokenCreator on the push service account "
    "(docs/engines/pubsub.md). This command grants nothing."
)


def _require_gcp_extra() -> None:
    """Exit with a line naming the extra when google-cloud-pubsub is not installed."""
    try:
        for module in GCP_MODULES:
            importlib.import_module(module)
    except ImportError as exc:
        missing = escape(f"pip install 'sublim[gcp]' ({exc.name} is missing)")
        err.print(f"[red]error:[/red] provisioning Pub/Sub needs extra packages: {missing}")
        raise typer.Exit(2) from exc


@app.command()
def provision(
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", help="a task type's topic (repeatable): <Topic> and <Topic>-sub"),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Google Cloud project [env: GOOGLE_PROJECT_ID]")
    ] = None,
    push_endpoint: Annotated[
        str | None,
        typer.Option(help="the API's https://…/task_execution_update?token=… to push updates to"),
    ] = None,
    push_service_account: Annotated[
        str | None, typer.Option(help="service account whose OIDC token signs each push")
    ] = None,
    push_audience: Annotated[
        str | None, typer.Option(help="audience of the OIDC token (default: the endpoint)")
    ] = None,
    max_deliveries: Annotated[
        int, typer.Option(min=5, max=100, help="deliveries before a message is dead-lettered")
    ] = 100,
    ack_deadline: Annotated[
        int, typer.Option(min=10, max=600, help="ack deadline of the pull subscriptions (s)")
    ] = 30,
) -> None:
    """Create the updates topic, a topic and an exactly-once pull subscription per task type,
    and a push subscription of the updates topic; idempotently (what exists is found)."""
    _require_gcp_extra()
    from sublim.gcp.provision import Plan

    settings = load_settings(None, project_id=project)
    if settings.project_id is None:
        err.print("[red]error:[/red] name the project: --project or GOOGLE_PROJECT_ID")
        raise typer.Exit(2)
    plan = Plan(
        project=settings.project_id,
        task_topics=tuple(topic or ()),
        updates_topic=settings.updates_topic,
        push_endpoint=push_endpoint,
        push_service_account=push_service_account,
        push_audience=push_audience,
        max_deliveries=max_deliveries,
        ack_deadline=ack_deadline,
    )
    _run_provision(plan)


def _run_provision(plan: Plan) -> None:
    from google.api_core.exceptions import GoogleAPICallError

    from sublim.gcp.provision import provision

    try:
        report = asyncio.run(provision(plan))
    except (GoogleAPICallError, ConfigError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    _print_report(report)


def _print_report(report: Report) -> None:
    table = Table("resource", "", box=None)
    for path, created in report.resources.items():
        table.add_row(path, "[green]created[/green]" if created else "found")
    out.print(table)
    for note in report.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
    made = sum(report.resources.values())
    out.print(f"{made} created, {len(report.resources) - made} found.")
    err.print(IAM_NOTE)
