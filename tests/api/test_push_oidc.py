"""The OIDC check of pushes (push_audience): Google-style tokens minted with a local key.

What cannot be shown here: that Pub/Sub on Google Cloud mints tokens our verifier accepts
with Google's real keys (docs/engines/pubsub.md lists it among the checks on real GCP)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from starlette.exceptions import HTTPException

from sublim.api.push_oidc import PushTokenVerifier
from tests.api.conftest import ApiProcess, create_task, push_envelope, start_api, update_of
from tests.api.oidc_tokens import (
    AUDIENCE,
    SERVICE_ACCOUNT,
    SigningKey,
    certs_of,
    certs_server,
    new_signing_key,
)


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return new_signing_key("google-key-1")


@pytest.fixture(scope="module")
def forger_key() -> SigningKey:
    return new_signing_key("google-key-1")  # the same key id, another key


def verifier_of(
    *published: SigningKey, service_account: str = SERVICE_ACCOUNT
) -> tuple[PushTokenVerifier, list[int]]:
    fetches: list[int] = []

    async def fetch() -> Mapping[str, str]:
        fetches.append(1)
        return certs_of(*published)

    return PushTokenVerifier(AUDIENCE, service_account, fetch), fetches


async def status_of(verifier: PushTokenVerifier, authorization: str | None) -> int:
    try:
        await verifier.verify(authorization)
    except HTTPException as exc:
        return exc.status_code
    return 200


async def test_a_token_signed_by_a_published_key_for_the_audience_verifies(
    google_key: SigningKey,
) -> None:
    verifier, fetches = verifier_of(google_key)

    claims = await verifier.verify(f"Bearer {google_key.sign()}")
    await verifier.verify(f"Bearer {google_key.sign()}")

    assert claims["email"] == SERVICE_ACCOUNT
    assert fetches == [1]  # the keys are cached


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"aud": "https://elsewhere.example/"}, 401),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, 401),
        ({"iss": "https://evil.example"}, 401),
        ({"email": "someone@else.iam.gserviceaccount.com"}, 403),
        ({"email_verified": False}, 403),
        ({"email": None}, 403),
    ],
    ids=["wrong-audience", "expired", "wrong-issuer", "other-account", "unverified", "no-email"],
)
async def test_a_token_with_wrong_claims_is_rejected(
    google_key: SigningKey, overrides: dict[str, object], status: int
) -> None:
    verifier, _ = verifier_of(google_key)

    assert await status_of(verifier, f"Bearer {google_key.sign(**overrides)}") == status


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Basic abc", "Bearer not-a-jwt", "Bearer a.b.c"]
)
async def test_a_missing_or_malformed_token_is_a_401(
    google_key: SigningKey, authorization: str | None
) -> None:
    verifier, _ = verifier_of(google_key)

    assert await status_of(verifier, authorization) == 401


async def test_a_token_signed_by_another_key_is_a_401(
    google_key: SigningKey, forger_key: SigningKey
) -> None:
    verifier, _ = verifier_of(google_key)

    assert await status_of(verifier, f"Bearer {forger_key.sign()}") == 401


async def test_a_token_naming_an_unknown_key_fetches_the_keys_again(
    google_key: SigningKey,
) -> None:
    rotated = new_signing_key("google-key-2")
    published = [google_key]
    fetches: list[int] = []

    async def fetch() -> Mapping[str, str]:
        fetches.append(1)
        return certs_of(*published)

    verifier = PushTokenVerifier(AUDIENCE, SERVICE_ACCOUNT, fetch)
    await verifier.verify(f"Bearer {google_key.sign()}")
    published.append(rotated)
    verifier._fetched_at -= 61  # a minute later

    assert await status_of(verifier, f"Bearer {rotated.sign()}") == 200
    assert len(fetches) == 2


# The route, in a real `sublim api` process


@pytest.fixture(scope="module")
def oidc_api(
    tmp_path_factory: pytest.TempPathFactory, google_key: SigningKey
) -> Iterator[ApiProcess]:
    with certs_server(google_key) as url:
        env = {
            "SUBLIM_PUSH_AUDIENCE": AUDIENCE,
            "SUBLIM_PUSH_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
            "SUBLIM_PUSH_OIDC_CERTS_URL": url,
        }
        process = start_api(Path(tmp_path_factory.mktemp("oidc-api")), env)
        yield process
        process.stop()


def push_with(client: httpx.Client, update: dict[str, object], token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post("/task_execution_update", json=push_envelope(update), headers=headers)
    return response.status_code


def test_the_route_records_a_push_only_with_a_verified_token(
    oidc_api: ApiProcess, google_key: SigningKey, forger_key: SigningKey
) -> None:
    with oidc_api.client() as client:
        execution = create_task(client, "Oidc", execute=True)["execution"]
        running = update_of(execution, 1, "Running")

        assert push_with(client, running, None) == 401
        assert push_with(client, running, forger_key.sign()) == 401
        assert push_with(client, running, google_key.sign(email="x@y.z")) == 403
        events = client.get(f"/v1/executions/{execution['id']}").json()["events"]
        assert "Running" not in [event["status"] for event in events]

        assert push_with(client, running, google_key.sign()) == 200
        events = client.get(f"/v1/executions/{execution['id']}").json()["events"]
        assert [event["status"] for event in events].count("Running") == 1
