"""`sublim gcp provision` against the Pub/Sub emulator: what it creates, and that running it
again creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gcp_emulators import require_pubsub_emulator, unique_project

pubsub_v1 = pytest.importorskip("google.cloud.pubsub_v1")

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "http://127.0.0.1:9/task_execution_update?token=s3cret"
SERVICE_ACCOUNT = "push@p.iam.gserviceaccount.com"


def provision(project: str, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOOGLE_PROJECT_ID": project, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "sublim.cli", "gcp", "provision", *options]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def project() -> str:
    require_pubsub_emulator()
    return unique_project("prov")


def test_provision_creates_the_layout_then_finds_it(project: str) -> None:
    options = ["--topic", "Thumbnail", "--push-endpoint", ENDPOINT, "--max-deliveries", "7"]

    first = provision(project, *options, "--push-service-account", SERVICE_ACCOUNT)
    second = provision(project, *options)

    assert first.returncode == 0, first.stderr
    assert "7 created, 1 found." not in first.stdout
    assert "8 created, 0 found." in first.stdout
    assert "s3cret" not in first.stdout + first.stderr  # the push token is not printed
    assert second.returncode == 0, second.stderr
    assert "0 created, 8 found." in second.stdout


def test_the_subscriptions_have_exactly_once_dead_letters_and_push(project: str) -> None:
    provision(
        project,
        "--topic",
        "Thumbnail",
        "--push-endpoint",
        ENDPOINT,
        "--push-service-account",
        SERVICE_ACCOUNT,
    )
    subscriber = pubsub_v1.SubscriberClient()
    pull = subscriber.get_subscription(
        subscription=f"projects/{project}/subscriptions/Thumbnail-sub"
    )
    push = subscriber.get_subscription(
        subscription=f"projects/{project}/subscriptions/TaskExecutionUpdates-push"
    )

    assert pull.topic == f"projects/{project}/topics/Thumbnail"
    assert pull.enable_exactly_once_delivery
    assert pull.dead_letter_policy.dead_letter_topic.endswith("/topics/Thumbnail-sub-dlq")
    assert pull.dead_letter_policy.max_delivery_attempts == 100
    assert not pull.push_config.push_endpoint
    assert push.push_config.push_endpoint == ENDPOINT
    assert push.push_config.oidc_token.service_account_email == SERVICE_ACCOUNT
    assert push.push_config.oidc_token.audience == ENDPOINT
    assert not push.enable_message_ordering  # a failing push must not hold up its key
    assert push.dead_letter_policy.dead_letter_topic.endswith("/TaskExecutionUpdates-push-dlq")


def test_provision_without_a_project_is_an_error() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in {"GOOGLE_PROJECT_ID", "SUBLIM_PROJECT_ID"}
    }
    command = [sys.executable, "-m", "sublim.cli", "gcp", "provision"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert "--project" in result.stderr
