"""The Python client of the HTTP API: `Client` (sync) and `AsyncClient` (asyncio).

Both speak through `_wire` (requests, answers, errors, Server-Sent Events); only the
transport differs. Tasks come back as `sublim.core.model.TaskRecord`, executions as
`sublim.core.model.Execution` (its store-only fields `payload`, `last_seq` and `heartbeat_at`
are not sent by the API and keep their defaults), events as `sublim.core.model.Event`, and lists
as `Page` (`items`, `next_cursor`).
"""

from __future__ import annotations

from sublim.client._wire import DEFAULT_URL, TOKEN_ENV, URL_ENV, CreatedTask
from sublim.client.aio import AsyncClient
from sublim.client.sync import Client
from sublim.store.base import Page

__all__ = ["DEFAULT_URL", "TOKEN_ENV", "URL_ENV", "AsyncClient", "Client", "CreatedTask", "Page"]
