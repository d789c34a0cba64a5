"""Real API processes for the client: the open and secured `sublim api` of tests/api, and a
`sublim up` running the bundled example executor, so that executions really finish."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import sublim
from tests.api.conftest import ApiProcess, api, secured_api, start_api, topic

__all__ = ["api", "secured_api", "topic"]

EXAMPLE_NODE = "sublim.examples.hello:node"


@pytest.fixture(scope="session")
def worked_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """`sublim up --executor sublim.examples.hello:node`: topics Hello, Sleep, Fibonacci and
    Fail are executed; any other topic stays queued."""
    folder = tmp_path_factory.mktemp("worked-api")
    process = start_api(folder, {}, command="up", options=["--executor", EXAMPLE_NODE])
    yield process
    process.stop()


@pytest.fixture
def client(api: ApiProcess) -> Iterator[sublim.Client]:
    with sublim.Client(api.url) as opened:
        yield opened


@pytest.fixture
def worked_client(worked_api: ApiProcess) -> Iterator[sublim.Client]:
    with sublim.Client(worked_api.url) as opened:
        yield opened


@pytest.fixture
async def async_client(api: ApiProcess) -> AsyncIterator[sublim.AsyncClient]:
    async with sublim.AsyncClient(api.url) as opened:
        yield opened
