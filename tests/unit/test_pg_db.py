"""The pure parts of the PostgreSQL helpers: URLs, database identity, error kinds, arrays."""

from __future__ import annotations

import pytest

pytest.importorskip("asyncpg")

import asyncpg

from sublim.engines.postgres import (
    address_of,
    columns,
    dsn_from_url,
    is_connection_error,
    same_database,
    schema_of,
    unnest,
)
from sublim.errors import ConfigError


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@h:5/db", "postgres://u@h:5/db", "postgresql+asyncpg://u@h:5/db"],
)
def test_every_postgres_scheme_gives_a_postgresql_dsn(url: str) -> None:
    assert dsn_from_url(url) == "postgresql://u@h:5/db"


def test_another_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        dsn_from_url("mysql://u@h/db")


def test_the_logged_address_has_no_password() -> None:
    assert address_of("postgresql://u:secret@db.internal:6432/app") == "db.internal:6432/app"


def test_same_database_compares_host_port_database_user_and_parameters() -> None:
    base = "postgresql://u@h:5432/db?search_path=a"
    assert same_database(base, "postgresql://u:pw@h/db?search_path=a")
    assert not same_database(base, "postgresql://u@h:5432/db?search_path=b")
    assert not same_database(base, "postgresql://u@h:5432/other?search_path=a")
    assert not same_database(base, "postgresql://v@h:5432/db?search_path=a")


def test_the_schema_is_the_first_of_the_search_path() -> None:
    assert schema_of("postgresql://h/db?search_path=mine,public") == "mine"
    assert schema_of("postgresql://h/db") is None


def test_refusals_are_not_connection_errors_but_lost_connections_are() -> None:
    assert is_connection_error(ConnectionRefusedError())
    assert is_connection_error(asyncpg.CannotConnectNowError("starting up"))
    assert is_connection_error(asyncpg.InterfaceError("connection is closed"))
    assert not is_connection_error(asyncpg.UniqueViolationError("duplicate"))
    assert not is_connection_error(asyncpg.QueryCanceledError("canceled"))


def test_rows_are_bound_as_one_array_per_column() -> None:
    assert columns([(1, "a"), (2, "b")], 2) == [[1, 2], ["a", "b"]]
    assert columns([], 2) == [[], []]
    assert unnest(["text", "integer"], 3) == "unnest($3::text[], $4::integer[])"
