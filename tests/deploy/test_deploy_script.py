"""deploy/gcp/deploy.sh: shellcheck-clean, and run here against a recording `gcloud`; every
distinct gcloud command it issues is then checked by the real gcloud's argument parser
(offline: a command that parses stops at the missing credentials, exit code 1; one that does
not parse exits 2)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.commands import DEPLOY, clean_env, tool
from tests.engines import IN_CI

SCRIPT = DEPLOY / "gcp" / "deploy.sh"
INDEXES = DEPLOY / "gcp" / "firestore.indexes.json"
RUN_URL = "https://{service}-abc123-ew.a.run.app"

#: A gcloud that records each call (one JSON list per line), keeps each --env-vars-file,
#: answers `run services describe` with a URL, `projects describe` with a project number and
#: `firestore databases describe` with "absent".
RECORDING_GCLOUD = f"""#!{sys.executable}
import json, os, shutil, sys
args = sys.argv[1:]
log = os.environ["RECORD"]
for i, arg in enumerate(args):
    if arg.startswith("--env-vars-file="):
        kept = log + f".env{{sum(1 for _ in open(log)) if os.path.exists(log) else 0}}"
        shutil.copy(arg.split("=", 1)[1], kept)
        args[i] = "--env-vars-file=" + kept
with open(log, "a") as out:
    out.write(json.dumps(args) + "\\n")
if args[:3] == ["run", "services", "describe"]:
    print({RUN_URL!r}.format(service=args[3]))
if args[:2] == ["projects", "describe"]:
    print("123456789")
if args[:3] == ["firestore", "databases", "describe"]:
    sys.exit(1)
"""
RECORDING_SUBLIM = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["RECORD"] + ".sublim", "a") as out:
    out.write(json.dumps([os.environ.get("GOOGLE_EXECUTION_UPDATES_TOPIC_ID"), *sys.argv[1:]]))
"""


def test_bash_parses_the_script() -> None:
    subprocess.run(["bash", "-n", SCRIPT], check=True)


def test_shellcheck_finds_nothing() -> None:
    result = subprocess.run(
        [tool("shellcheck"), "--severity=style", SCRIPT], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def stub(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script run to the end with recording stubs; the record's path."""
    directory = tmp_path_factory.mktemp("deploy")
    record = directory / "gcloud.jsonl"
    env = clean_env(
        RECORD=str(record),
        GCLOUD=str(stub(directory, "gcloud", RECORDING_GCLOUD)),
        SUBLIM=str(stub(directory, "sublim", RECORDING_SUBLIM)),
        GOOGLE_PROJECT_ID="my-project",
        IMAGE="europe-west1-docker.pkg.dev/my-project/sublim/sublim:0.1.0",
        SUBLIM_API_TOKENS='{"t1": ["read", "write"], "t2": ["admin"]}',
        SUBLIM_PUSH_TOKEN="push-secret",
        TASK_TOPICS="Hello Sleep",
    )
    subprocess.run(["bash", SCRIPT], env=env, check=True, capture_output=True, timeout=120)
    return record


def calls(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def env_file_of(call: list[str]) -> dict[str, str]:
    [path] = [a.split("=", 1)[1] for a in call if a.startswith("--env-vars-file=")]
    loaded: dict[str, str] = json.loads(Path(path).read_text())
    return loaded


def deploy_of(record: Path, service: str) -> list[str]:
    [call] = [c for c in calls(record) if c[:2] == ["run", "deploy"] and c[2] == service]
    return call


def test_it_enables_the_apis_and_creates_the_missing_database(deployed: Path) -> None:
    made = calls(deployed)
    assert made[0][:2] == ["services", "enable"]
    assert {"run.googleapis.com", "firestore.googleapis.com", "pubsub.googleapis.com"} <= set(
        made[0]
    )
    create = next(c for c in made if c[:3] == ["firestore", "databases", "create"])
    assert "--type=firestore-native" in create
    assert all("--project=my-project" in call for call in made)


def test_it_declares_every_index_of_the_indexes_file(deployed: Path) -> None:
    declared = json.loads(INDEXES.read_text())
    made = calls(deployed)
    composite = [c for c in made if c[:4] == ["firestore", "indexes", "composite", "create"]]
    exempt = [c for c in made if c[:4] == ["firestore", "indexes", "fields", "update"]]
    assert len(composite) == len(declared["indexes"])
    assert len(exempt) == len(declared["fieldOverrides"])


def test_the_datastore_serves_grpc_on_firestore_inside_the_project(deployed: Path) -> None:
    call = deploy_of(deployed, "sublim-datastore")
    assert {"--args=datastore", "--use-http2", "--ingress=internal"} <= set(call)
    env = env_file_of(call)
    assert env["SUBLIM_STORE_URL"] == "firestore://my-project"
    assert env["SUBLIM_DATASTORE_PORT"] == "8080"


API_ACCOUNT = "123456789-compute@developer.gserviceaccount.com"


def test_the_datastore_takes_only_calls_that_cloud_runs_iam_let_through(deployed: Path) -> None:
    call = deploy_of(deployed, "sublim-datastore")
    assert "--no-allow-unauthenticated" in call
    assert "--allow-unauthenticated" not in call
    assert env_file_of(call)["SUBLIM_DATASTORE_AUTH"] == "platform"


def test_only_the_apis_service_account_may_invoke_the_datastore(deployed: Path) -> None:
    [grant] = [c for c in calls(deployed) if c[:3] == ["run", "services", "add-iam-policy-binding"]]
    assert grant[3] == "sublim-datastore"
    assert {f"--member=serviceAccount:{API_ACCOUNT}", "--role=roles/run.invoker"} <= set(grant)
    api = deploy_of(deployed, "sublim-api")
    assert f"--service-account={API_ACCOUNT}" in api
    assert env_file_of(api)["SUBLIM_DATASTORE_AUTH"] == "platform"


def test_the_api_reaches_the_datastore_over_tls_and_takes_updates_by_push(deployed: Path) -> None:
    env = env_file_of(deploy_of(deployed, "sublim-api"))
    assert env["DATASTORE_ADDRESS"] == "sublim-datastore-abc123-ew.a.run.app:443"
    assert (env["USE_TLS"], env["SUBLIM_PULL_UPDATES"]) == ("true", "false")
    assert env["SUBLIM_BROKER_URL"] == "pubsub://my-project"
    assert env["GOOGLE_PROJECT_ID"] == "my-project"
    assert json.loads(env["SUBLIM_API_TOKENS"]) == {"t1": ["read", "write"], "t2": ["admin"]}


def test_it_provisions_pubsub_with_a_push_to_the_api(deployed: Path) -> None:
    [topic, *argv] = json.loads(Path(f"{deployed}.sublim").read_text())
    assert topic == "TaskExecutionUpdates"
    assert argv[:4] == ["gcp", "provision", "--project", "my-project"]
    assert argv[4:8] == ["--topic", "Hello", "--topic", "Sleep"]
    endpoint = "https://sublim-api-abc123-ew.a.run.app/task_execution_update?token=push-secret"
    assert argv[8:] == ["--push-endpoint", endpoint]


def test_the_provision_command_it_runs_exists_with_those_options() -> None:
    sublim = Path(sys.executable).parent / "sublim"
    result = subprocess.run([sublim, "gcp", "provision", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert all(option in result.stdout for option in ("--project", "--topic", "--push-endpoint"))


def option_shape(word: str) -> str:
    name = word.split("=", 1)[0]
    return f"{name}[array]" if "array-config" in word else name


def distinct_commands(record: Path) -> list[list[str]]:
    """One call per command (its first words) and set of option shapes."""
    seen: dict[tuple[str, ...], list[str]] = {}
    for call in calls(record):
        words = [word for word in call[:4] if not word.startswith("--")]
        shapes = sorted({option_shape(word) for word in call if word.startswith("--")})
        seen.setdefault((*words, *shapes), call)
    return list(seen.values())


def test_real_gcloud_parses_every_command_it_issues(deployed: Path, tmp_path: Path) -> None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        if IN_CI:
            pytest.fail("gcloud is not installed")
        pytest.skip("gcloud is not installed")
    env = clean_env(CLOUDSDK_CONFIG=str(tmp_path), CLOUDSDK_CORE_DISABLE_PROMPTS="1")
    env.pop("CLOUDSDK_CORE_PROJECT", None)
    for call in distinct_commands(deployed):
        result = subprocess.run(
            [gcloud, *call], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 1, f"gcloud {shlex.join(call)}:\n{result.stderr[-1500:]}"
        assert "active account" in result.stderr or "credentials" in result.stderr.lower()


def test_the_script_stops_at_once_without_its_required_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in clean_env().items() if k != "IMAGE"} | {"PATH": os.environ["PATH"]}
    result = subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "GOOGLE_PROJECT_ID" in result.stderr
