"""Settings precedence and backends chosen by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from sublim.config import load_settings
from sublim.core.backends import broker_from_url, store_from_url
from sublim.errors import ConfigError


def test_defaults_are_the_embedded_sqlite_file_on_loopback() -> None:
    settings = load_settings()
    assert settings.store_url == settings.broker_url == "sqlite:///./sublim.db"
    assert settings.host == "127.0.0.1"


def test_environment_overrides_a_config_file_and_flags_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "sublim.toml"
    config.write_text("lease_seconds = 40\nmax_attempts = 7\nport = 9001\n")
    monkeypatch.setenv("SUBLIM_MAX_ATTEMPTS", "5")
    settings = load_settings(config, port=9002)
    assert (settings.lease_seconds, settings.max_attempts, settings.port) == (40, 5, 9002)


def test_an_unknown_key_in_the_config_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "sublim.toml"
    config.write_text("leese_seconds = 40\n")
    with pytest.raises(ConfigError, match="leese_seconds"):
        load_settings(config)


def test_the_originals_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "7000")
    monkeypatch.setenv("GOOGLE_EXECUTION_UPDATES_TOPIC_ID", "Updates")
    monkeypatch.setenv("DATASTORE_ADDRESS", "datastore:50051")
    monkeypatch.setenv("USE_TLS", "true")
    settings = load_settings()
    assert settings.port == 7000
    assert settings.updates_topic == "Updates"
    assert settings.effective_store_url == "grpcs://datastore:50051"


def test_a_heartbeat_longer_than_the_lease_is_refused() -> None:
    with pytest.raises(ConfigError, match="heartbeat_seconds"):
        load_settings(lease_seconds=5, heartbeat_seconds=10)


def test_an_unknown_url_scheme_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown store URL scheme 'mongodb'.*sqlite"):
        store_from_url("mongodb://localhost")


def test_a_url_without_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="no scheme"):
        broker_from_url("localhost:6379")


def test_embedded_backends_load_lazily_by_scheme() -> None:
    assert type(store_from_url("memory://")).__name__ == "MemoryStore"
    assert type(broker_from_url("sqlite:///x.db")).__name__ == "SqliteBroker"
