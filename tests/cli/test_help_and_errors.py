"""--help of every people's command, and errors: one red line, exit codes 2 and 3."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sublim.cli import app
from tests.api.conftest import READER, ApiProcess, free_port
from tests.cli.conftest import Sublim, run_sublim

COMMANDS = [
    ("tasks", "create"),
    ("tasks", "list"),
    ("tasks", "show"),
    ("tasks", "run"),
    ("tasks", "delete"),
    ("executions", "list"),
    ("executions", "show"),
    ("executions", "watch"),
    ("executions", "cancel"),
    ("executions", "retry"),
]


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_the_url_and_token_options_with_env_vars_and_default(
    command: tuple[str, str],
) -> None:
    text = _help(*command)
    url_line = next(line for line in text.splitlines() if "--url" in line)
    assert "SUBLIM_API_URL" in url_line
    assert "http://127.0.0.1:8080" in text
    assert "SUBLIM_API_TOKEN" in text


def test_help_of_list_shows_the_limit_default_and_the_statuses() -> None:
    text = _help("executions", "list")
    assert "[default: 20]" in text
    assert "passed" in text.lower()
    assert "readyfordispatch" in text.lower()


def test_the_top_level_help_lists_the_peoples_commands() -> None:
    text = _help()
    assert "tasks" in text
    assert "executions" in text


def test_an_unreachable_api_exits_3_with_one_line() -> None:
    ran = run_sublim(f"http://127.0.0.1:{free_port()}", "tasks", "list")
    assert ran.code == 3
    assert ran.err.strip().splitlines() == [ran.err.strip()]
    assert "cannot reach the API" in ran.err
    assert "Traceback" not in ran.err


def test_an_unknown_id_exits_2_with_the_servers_detail(sublim: Sublim) -> None:
    ran = sublim("executions", "show", "01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert ran.code == 2
    assert ran.err.strip() == (
        "error: no execution with id '01HZZZZZZZZZZZZZZZZZZZZZZZ' (404 Not Found)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--payload", "{oops"], "--payload is not JSON"),
        (["--payload", "[1]"], "--payload must be a JSON object"),
        (["--label", "novalue"], "--label 'novalue' is not KEY=VALUE"),
    ],
)
def test_bad_input_exits_2_before_asking_the_api(args: list[str], message: str) -> None:
    ran = run_sublim(f"http://127.0.0.1:{free_port()}", "tasks", "create", "Topic", *args)
    assert ran.code == 2
    assert message in ran.err


def test_an_invalid_topic_exits_2_with_the_field_error(sublim: Sublim) -> None:
    ran = sublim("tasks", "create", "no spaces")
    assert ran.code == 2
    assert "body.topic" in ran.err
    assert "422" in ran.err


def test_watch_wants_an_execution_or_a_task(sublim: Sublim) -> None:
    ran = sublim("executions", "watch")
    assert ran.code == 2
    assert "give an execution id or --task" in ran.err


def test_a_missing_token_exits_2_and_a_token_from_the_env_works(secured_api: ApiProcess) -> None:
    refused = run_sublim(secured_api.url, "tasks", "list")
    allowed = run_sublim(
        secured_api.url, "tasks", "list", "--json", env={"SUBLIM_API_TOKEN": READER}
    )
    assert refused.code == 2
    assert "401" in refused.err
    assert allowed.code == 0
    assert allowed.json()["items"] == []
