"""The Store protocol: where tasks and executions are kept.

A store offers atomic primitives; the rules of how an execution changes are the core's
(`sublim.core.model`). `modify_executions` is the one read-modify-write primitive: the backend
loads the executions, calls the core's function on each, and writes back every applied change
(the new row and its new events) in one transaction, so that concurrent writers never lose
an update.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import Field, field_validator

from sublim.broker.base import Broker, Message
from sublim.core.caps import check_label_filters, check_labels
from sublim.core.model import Change, Execution, Model, TaskRecord, TaskStatus

T = TypeVar("T")

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, newest first; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None = None


#: How a list filter compares the query's value with what it tests of a record.
FilterOp = Literal["equals", "one_of", "at_or_after", "before", "has_labels", "lists"]


@dataclass(frozen=True, slots=True)
class ListFilter:
    """One filter of a list query, declared once: the SQL stores build their `WHERE` from it,
    the in-memory and Firestore stores check records with it (`store.common`), the datastore
    codec carries it. `name` is the query's field; `on` is what of a record it tests: an
    attribute, or `latest_status` (of a task's latest execution) or `heartbeat_or_creation`
    (an execution's last sign of life)."""

    name: str
    on: str
    op: FilterOp

    def value_in(self, query: Model) -> Any:
        """The query's value for this filter, or None when it is not set."""
        value = getattr(query, self.name)
        return None if isinstance(value, Collection) and not value else value


class TaskQuery(Model):
    topic: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    #: Status of the task's latest execution.
    status: TaskStatus | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = None

    @field_validator("labels")
    @classmethod
    def _capped(cls, labels: dict[str, str]) -> dict[str, str]:
        check_label_filters(labels)  # raises InvalidInput, which pydantic lets through
        return labels


class ExecutionQuery(Model):
    task_id: str | None = None
    topic: str | None = None
    statuses: frozenset[TaskStatus] = frozenset()
    created_after: datetime | None = None
    created_before: datetime | None = None
    #: Executions whose last heartbeat (or, without one, creation) is older than this.
    heartbeat_before: datetime | None = None
    #: Executions whose `depends_on` names this execution.
    waiting_on: str | None = None
    #: Oldest first (the cursor then names the last, newest, id of the previous page).
    oldest_first: bool = False
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = None


#: The filters of `TaskQuery` and `ExecutionQuery`: a new filter is a field above and a line here.
TASK_FILTERS = (
    ListFilter("topic", "topic", "equals"),
    ListFilter("labels", "labels", "has_labels"),
    ListFilter("status", "latest_status", "equals"),
)
EXECUTION_FILTERS = (
    ListFilter("task_id", "task_id", "equals"),
    ListFilter("topic", "topic", "equals"),
    ListFilter("statuses", "status", "one_of"),
    ListFilter("created_after", "created_at", "at_or_after"),
    ListFilter("created_before", "created_at", "before"),
    ListFilter("heartbeat_before", "heartbeat_or_creation", "before"),
    ListFilter("waiting_on", "depends_on", "lists"),
)


class TaskPatch(Model):
    name: str | None = None
    payload: dict[str, object] | None = None
    labels: dict[str, str] | None = None

    @field_validator("labels")
    @classmethod
    def _capped(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        if labels is not None:
            check_labels(labels)
        return labels


#: What `modify_executions` applies to each execution. The core passes only the named,
#: serializable modifiers of `sublim.core.modifiers` (each one is a `ModifyFn`): a remote store
#: sends those by name in one round trip; any other callable still works everywhere, and a
#: remote store applies it by optimistic read, compare and write (see `sublim.store.remote`).
ModifyFn = Callable[[Execution], Change]


@dataclass(slots=True)
class StoreStats:
    tasks: int = 0
    executions: dict[TaskStatus, int] = field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    """Persistent records of tasks and executions. Every method may raise `StoreError`."""

    async def open(self) -> None:
        """Connect and migrate the schema; idempotent."""

    async def close(self) -> None: ...

    async def create_task(self, task: TaskRecord) -> TaskRecord:
        """Insert a task; `AlreadyExists` if its id is taken."""

    async def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        """Insert tasks in one transaction (one batch write where the database has no
        transaction over that many documents, see the store's notes); `AlreadyExists` if an
        id is taken or repeated, and then none is inserted. Returns them in order, without a
        latest execution."""

    async def get_task(self, task_id: str) -> TaskRecord:
        """The task with its latest execution's summary; `TaskNotFound` if absent."""

    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]: ...

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        """Change the fields the patch sets; `TaskNotFound` if absent."""

    async def delete_task(self, task_id: str) -> None:
        """Delete a task and its executions; `TaskNotFound` if absent."""

    async def create_executions(self, executions: Sequence[Execution]) -> None:
        """Insert executions (with their events) in one transaction; `TaskNotFound` if a
        task is absent, `AlreadyExists` if an id is taken."""

    async def get_execution(self, execution_id: str) -> Execution:
        """The execution with its full event log; `ExecutionNotFound` if absent."""

    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        """Executions without their event logs (`events` is empty), newest first."""

    async def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        """Atomically apply `fn` to each existing execution of `ids`.

        `fn` receives the execution without its event log and returns a `Change`; every
        applied change is written (row and `new_events`) in one transaction. Ids that do not
        exist are skipped. Returns the changes, in the order of `ids`.
        """

    async def stats(self) -> StoreStats:
        """Count of tasks and of executions per status."""


@runtime_checkable
class TransactionalOutbox(Protocol):
    """An optional capability of a store whose database can also hold the broker's messages
    (the PostgreSQL store with the PostgreSQL broker on one database).

    With it, enqueueing records executions and publishes their request messages in one
    transaction: no crash can leave one without the other, and the sweeper has nothing to
    republish. The service uses it when `shares_transactions_with(broker)` says so.
    """

    def shares_transactions_with(self, broker: Broker) -> bool:
        """Whether `broker` keeps its messages where this store can write in one transaction."""

    async def create_and_publish(
        self,
        executions: Sequence[Execution],
        messages: Mapping[str, Sequence[Message]],
        tasks: Sequence[TaskRecord] = (),
    ) -> None:
        """`create_tasks(tasks)` (new tasks of these executions), `create_executions(executions)`
        and `broker.publish(topic, messages[topic])` for each topic, in one transaction."""
