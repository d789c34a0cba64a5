"""What a grpc:// store sends behind Cloud Run's IAM, and which hosts count as loopback."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from sublim.config import is_loopback, load_settings
from sublim.datastore.auth import ClientAuth
from sublim.errors import ConfigError, StoreError

TOKEN = "s3cret-datastore-token-0123456789"


class FakeIdTokenCredentials:
    """google-auth's ID token credentials: invalid until refreshed."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self.token: str | None = None
        self.refreshes = 0

    @property
    def valid(self) -> bool:
        return self.token is not None

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = f"id-token-for-{self.audience}"


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[FakeIdTokenCredentials]:
    from google.oauth2 import id_token

    made: list[FakeIdTokenCredentials] = []

    def fetch(audience: str, request: Any = None) -> FakeIdTokenCredentials:
        made.append(FakeIdTokenCredentials(audience))
        return made[-1]

    monkeypatch.setattr(id_token, "fetch_id_token_credentials", fetch)
    return made


URL = "grpcs://sublim-datastore-abc123-ew.a.run.app:443"


def test_on_the_platform_the_store_sends_an_id_token_for_the_datastores_url(
    fetched: list[FakeIdTokenCredentials],
) -> None:
    auth = ClientAuth.from_settings(load_settings(datastore_auth="platform"), URL)
    expected = "Bearer id-token-for-https://sublim-datastore-abc123-ew.a.run.app"
    assert auth.metadata() == (("x-serverless-authorization", expected),)


def test_the_id_token_is_fetched_once_while_it_is_valid(
    fetched: list[FakeIdTokenCredentials],
) -> None:
    auth = ClientAuth.from_settings(load_settings(datastore_auth="platform"), URL)
    auth.metadata()
    auth.metadata()
    assert [credentials.refreshes for credentials in fetched] == [1]


def test_a_custom_audience_and_a_token_travel_side_by_side(
    fetched: list[FakeIdTokenCredentials],
) -> None:
    settings = load_settings(
        datastore_auth="platform", datastore_audience="datastore.example", datastore_token=TOKEN
    )
    assert dict(ClientAuth.from_settings(settings, URL).metadata()) == {
        "authorization": f"Bearer {TOKEN}",
        "x-serverless-authorization": "Bearer id-token-for-datastore.example",
    }


def test_without_platform_auth_no_id_token_is_sent() -> None:
    auth = ClientAuth.from_settings(load_settings(datastore_token=TOKEN), URL)
    assert auth.metadata() == (("authorization", f"Bearer {TOKEN}"),)


def test_credentials_that_cannot_be_had_are_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.oauth2 import id_token

    def no_credentials(audience: str, request: Any = None) -> None:
        raise RuntimeError("no metadata server")

    monkeypatch.setattr(id_token, "fetch_id_token_credentials", no_credentials)
    auth = ClientAuth.from_settings(load_settings(datastore_auth="platform"), URL)
    with pytest.raises(StoreError, match=r"cannot get a Google ID token .*no metadata server"):
        auth.metadata()


def test_platform_auth_without_the_gcp_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.oauth2", None)
    with pytest.raises(ConfigError, match=r"pip install 'sublim\[gcp\]'"):
        ClientAuth.from_settings(load_settings(datastore_auth="platform"), URL)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "", "::", "10.0.0.1", "127.attacker.example", "localhost.example"]
)
def test_hosts_beyond_loopback(host: str) -> None:
    assert not is_loopback(host)
