"""The Firestore store: `firestore://PROJECT[/DATABASE]` (extra `sublim[gcp]`).

Tasks and executions are documents; each execution's event log is a subcollection of one
document per event (layout: `sublim.store._firestore_docs`). Lists are Firestore queries
ordered by id, newest first, paged with `start_after` cursors
(`sublim.store._firestore_queries`).

Writes use **preconditions, not transactions**: `modify_executions` reads the documents,
lets the core's function decide, and commits every change in one batch whose writes carry
the `update_time` each document had when read (`last_update_time`). If any document changed
meanwhile, Firestore refuses the whole batch (FAILED_PRECONDITION) and the read-modify-write
starts again, a bounded number of times with jittered backoff. Contended Firestore
transactions abort with lock timeouts; a refused precondition costs one round trip. Within
one process, changes to the same execution also queue on an in-process lock, so that a
process does not race against itself.

The emulator (`FIRESTORE_EMULATOR_HOST=host:port`) is used when that variable is set.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeAlias, TypeVar
from urllib.parse import urlsplit

from google.api_core import exceptions as google_errors
from google.cloud.firestore import AsyncClient, AsyncWriteBatch
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.async_query import AsyncQuery
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.base_query import BaseQuery, FieldFilter

from sublim.core.ids import check_ulid
from sublim.core.model import Change, Event, Execution, TaskRecord, TaskStatus
from sublim.errors import AlreadyExists, ConfigError, ExecutionNotFound, StoreError, TaskNotFound
from sublim.store._common import (
    apply_in_order,
    execution_matches,
    page_of,
    patched,
    task_matches,
)
from sublim.store._firestore_docs import (
    EVENTS,
    EXECUTIONS,
    TASKS,
    event_doc,
    event_from_doc,
    event_id,
    execution_doc,
    execution_from_doc,
    latest_fields,
    summary_from_doc,
    task_doc,
    task_from_doc,
    task_patch_fields,
)
from sublim.store._firestore_queries import (
    IndexShape,
    QueryPlan,
    execution_plan,
    task_plan,
)
from sublim.store.base import ExecutionQuery, ModifyFn, Page, StoreStats, TaskPatch, TaskQuery

P = ParamSpec("P")
T = TypeVar("T")
Snapshot: TypeAlias = DocumentSnapshot[AsyncDocumentReference]

DEFAULT_DATABASE = "(default)"
DOCUMENT_ID = "__name__"
#: The field lists order by (a copy of the document id).
ORDER_FIELD = "id"
#: Writes per commit: Firestore's documented limit for a batch.
MAX_WRITES_PER_COMMIT = 500
#: Executions `modify_executions` changes per commit (each change writes the execution, its
#: new events, and perhaps its task's summary: a few writes each, well under the limit).
EXECUTIONS_PER_COMMIT = 100
#: Tries of one read-modify-write against concurrent writers, and its backoff (full jitter).
MAX_TRIES = 25
FIRST_BACKOFF_SECONDS = 0.005
MAX_BACKOFF_SECONDS = 0.5
#: Documents a list may read before it answers with a shorter page (and a cursor).
MAX_SCANNED = 5000
SCAN_BATCH = 500

Write = Callable[[AsyncWriteBatch], None]


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Identified = TypeVar("Identified", bound=_Identified)


class _Raced(Exception):
    """A document changed between the read and the write: read again."""


def _translating_errors(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """`method`, raising sublim's errors where the Firestore client raises its own."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except google_errors.Conflict as exc:  # ALREADY_EXISTS on a create
            raise AlreadyExists(f"already exists ({exc.message})") from exc
        except google_errors.GoogleAPICallError as exc:
            raise StoreError(f"firestore error: {exc}") from exc

    return call


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**attempt))


@dataclass(slots=True)
class _KeyLock:
    lock: asyncio.Lock
    users: int = 0


class KeyedLocks:
    """One asyncio lock per key, taken in key order (so that batches cannot deadlock) and
    forgotten when no one holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, _KeyLock] = {}

    @asynccontextmanager
    async def holding(self, keys: Iterable[str]) -> AsyncIterator[None]:
        entries = [self._enter(key) for key in sorted(set(keys))]
        try:
            for entry in entries:
                await entry.lock.acquire()
            yield
        finally:
            self._leave(entries)

    def _enter(self, key: str) -> _KeyLock:
        entry = self._locks.setdefault(key, _KeyLock(asyncio.Lock()))
        entry.users += 1
        return entry

    def _leave(self, entries: Sequence[_KeyLock]) -> None:
        for entry in entries:
            if entry.lock.locked():
                entry.lock.release()
            entry.users -= 1
        self._locks = {key: e for key, e in self._locks.items() if e.users}

    def __len__(self) -> int:
        return len(self._locks)


def parse_url(url: str) -> tuple[str, str]:
    """`firestore://PROJECT[/DATABASE]` as (project, database)."""
    parts = urlsplit(url)
    database = parts.path.strip("/") or DEFAULT_DATABASE
    if parts.scheme != "firestore" or not parts.netloc or "/" in database:
        raise ConfigError(f"expected firestore://PROJECT[/DATABASE], got {url!r}")
    return parts.netloc, database


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _newest_per_task(executions: Iterable[Execution]) -> dict[str, Execution]:
    newest: dict[str, Execution] = {}
    for execution in executions:
        known = newest.get(execution.task_id)
        if known is None or known.id < execution.id:
            newest[execution.task_id] = execution
    return newest


def _refuse_repeated_ids(executions: Sequence[Execution]) -> None:
    seen: set[str] = set()
    for execution in executions:
        if execution.id in seen:
            raise AlreadyExists(f"an execution with id {execution.id!r} is listed twice")
        seen.add(execution.id)


class FirestoreStore:
    """The `Store` on Google Cloud Firestore (native mode), or its emulator."""

    def __init__(self, project: str, database: str = DEFAULT_DATABASE) -> None:
        self.project = project
        self.database = database
        self._client: AsyncClient | None = None
        self._locks = KeyedLocks()
        #: The index shape of every list query issued (checked against the indexes file).
        self.query_shapes: set[IndexShape] = set()
        #: Read-modify-writes started again because a document changed meanwhile.
        self.precondition_retries = 0

    @classmethod
    def from_url(cls, url: str) -> FirestoreStore:
        return cls(*parse_url(url))

    async def open(self) -> None:
        if self._client is None:
            self._client = AsyncClient(project=self.project, database=self.database)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise StoreError("the store is not open: call open() first")
        return self._client

    def _ref(self, collection: str, doc_id: str) -> AsyncDocumentReference:
        # `document("a/b/c")` would address a document in a sub-collection of "a".
        return self.client.collection(collection).document(check_ulid("id", doc_id))

    def _precondition(self, snapshot: Snapshot) -> Any:
        return self.client.write_option(last_update_time=snapshot.update_time)

    # Reading, writing, retrying

    async def _read(self, collection: str, ids: Iterable[str]) -> dict[str, Snapshot]:
        """The documents of `ids` that exist, read in one call."""
        refs = [self._ref(collection, doc_id) for doc_id in sorted(set(ids))]
        if not refs:
            return {}
        return {s.id: s async for s in self.client.get_all(refs) if s.exists}

    async def _commit(self, writes: Sequence[Write]) -> None:
        """Commit `writes` (at most `MAX_WRITES_PER_COMMIT`) atomically; `_Raced` if a
        precondition failed."""
        batch = self.client.batch()
        for write in writes:
            write(batch)
        try:
            await batch.commit()
        except google_errors.FailedPrecondition as exc:
            raise _Raced(str(exc)) from exc

    async def _commit_in_chunks(self, writes: Sequence[Write]) -> None:
        for chunk in _chunks(writes, MAX_WRITES_PER_COMMIT):
            await self._commit(chunk)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, tried again on `_Raced` up to `MAX_TRIES` times."""
        for tried in range(MAX_TRIES):
            try:
                return await attempt()
            except _Raced:
                self.precondition_retries += 1
                await asyncio.sleep(_backoff(tried))
        raise StoreError(f"firestore: still contended after {MAX_TRIES} tries")

    # Tasks

    @_translating_errors
    async def create_task(self, task: TaskRecord) -> TaskRecord:
        stored = task.model_copy(update={"latest_execution": None})
        await self._ref(TASKS, task.id).create(task_doc(stored))
        return stored

    @_translating_errors
    async def create_tasks(self, tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
        """Batch writes of creates: one atomic commit up to `MAX_WRITES_PER_COMMIT` tasks,
        chunks of that many beyond (taken ids are refused before the first commit)."""
        seen: set[str] = set()
        for task in tasks:
            if task.id in seen:
                raise AlreadyExists(f"a task with id {task.id!r} is listed twice")
            seen.add(task.id)
        taken = await self._read(TASKS, seen)
        if taken:
            raise AlreadyExists(f"a task with id {min(taken)!r} exists already")
        stored = [task.model_copy(update={"latest_execution": None}) for task in tasks]
        await self._commit_in_chunks([self._task_creation(task) for task in stored])
        return stored

    def _task_creation(self, task: TaskRecord) -> Write:
        ref, doc = self._ref(TASKS, task.id), task_doc(task)
        return lambda batch: batch.create(ref, doc)

    @_translating_errors
    async def get_task(self, task_id: str) -> TaskRecord:
        return task_from_doc(task_id, await self._task_snapshot(task_id))

    async def _task_snapshot(self, task_id: str) -> dict[str, Any]:
        snapshot = await self._ref(TASKS, task_id).get()
        if not snapshot.exists:
            raise TaskNotFound(task_id)
        return snapshot.to_dict() or {}

    @_translating_errors
    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        def task_of(snapshot: Snapshot) -> TaskRecord:
            return task_from_doc(snapshot.id, snapshot.to_dict() or {})

        return await self._scan(
            task_plan(query), query.cursor, query.limit, task_of, lambda t: task_matches(t, query)
        )

    @_translating_errors
    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        return await self._retrying(lambda: self._update_task_once(task_id, patch))

    async def _update_task_once(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        snapshot = await self._ref(TASKS, task_id).get()
        if not snapshot.exists:
            raise TaskNotFound(task_id)
        task = patched(task_from_doc(task_id, snapshot.to_dict() or {}), patch)
        fields, option = task_patch_fields(task), self._precondition(snapshot)
        await self._commit([lambda batch: batch.update(snapshot.reference, fields, option)])
        return task

    @_translating_errors
    async def delete_task(self, task_id: str) -> None:
        await self._retrying(lambda: self._delete_task_once(task_id))

    async def _delete_task_once(self, task_id: str) -> None:
        """Delete the executions, then the task, provided no execution was added since
        it was read (creating an execution writes the task's summary)."""
        snapshot = await self._ref(TASKS, task_id).get()
        if not snapshot.exists:
            raise TaskNotFound(task_id)
        await self._delete_executions_of(task_id)
        option = self._precondition(snapshot)
        await self._commit([lambda batch: batch.delete(snapshot.reference, option)])

    async def _delete_executions_of(self, task_id: str) -> None:
        query = self.client.collection(EXECUTIONS).where(
            filter=FieldFilter("task_id", "==", task_id)
        )
        refs = [snapshot.reference async for snapshot in query.select([]).stream()]
        await asyncio.gather(*(self.client.recursive_delete(ref) for ref in refs))

    # Lists

    async def _scan(
        self,
        plan: QueryPlan,
        cursor: str | None,
        limit: int,
        convert: Callable[[Snapshot], Identified],
        keep: Callable[[Identified], bool],
    ) -> Page[Identified]:
        """A page of what `keep` accepts, read newest first after `cursor` through `plan`.

        After `MAX_SCANNED` documents without a full page, the page is shorter and its
        cursor is the last document read, so that no call reads without bound."""
        self.query_shapes.add(plan.shape)
        matches: list[Identified] = []
        scanned, size = 0, limit + 1
        while True:
            batch = await self._fetch(plan, cursor, size)
            matches.extend(item for item in map(convert, batch) if keep(item))
            scanned += len(batch)
            if len(matches) > limit or len(batch) < size:
                return page_of(matches[: limit + 1], limit, _id_of)
            cursor, size = batch[-1].id, SCAN_BATCH
            if scanned >= MAX_SCANNED:
                return Page(items=matches, next_cursor=cursor)

    async def _fetch(self, plan: QueryPlan, after: str | None, size: int) -> list[Snapshot]:
        collection = self.client.collection(plan.collection)
        direction = BaseQuery.DESCENDING if plan.descending else BaseQuery.ASCENDING
        query: AsyncQuery = collection.order_by(ORDER_FIELD, direction=direction)
        for step in plan.filters:
            query = query.where(filter=FieldFilter(step.field, step.op, step.value))
        if after is not None:
            query = query.start_after({ORDER_FIELD: after})
        return [snapshot async for snapshot in query.limit(size).stream()]

    # Executions

    @_translating_errors
    async def create_executions(self, executions: Sequence[Execution]) -> None:
        if not executions:
            return
        _refuse_repeated_ids(executions)
        await self._retrying(lambda: self._create_executions_once(executions))

    async def _create_executions_once(self, executions: Sequence[Execution]) -> None:
        """One commit when it fits (executions, events and task summaries together);
        otherwise the executions in chunks, then the summaries."""
        tasks = await self._existing_tasks({execution.task_id for execution in executions})
        await self._refuse_taken_ids(executions)
        creations = [w for execution in executions for w in self._creation_writes(execution)]
        summaries = self._summary_writes_for_new(tasks, executions)
        if len(creations) + len(summaries) <= MAX_WRITES_PER_COMMIT:
            await self._commit([*creations, *summaries])
            return
        await self._commit_in_chunks(creations)
        await self._retrying(lambda: self._point_tasks_at_newest(executions))

    async def _existing_tasks(self, task_ids: set[str]) -> dict[str, Snapshot]:
        tasks = await self._read(TASKS, task_ids)
        missing = sorted(task_ids - tasks.keys())
        if missing:
            raise TaskNotFound(missing[0])
        return tasks

    async def _refuse_taken_ids(self, executions: Sequence[Execution]) -> None:
        taken = await self._read(EXECUTIONS, (execution.id for execution in executions))
        if taken:
            raise AlreadyExists(f"an execution with id {min(taken)!r} exists already")

    def _creation_writes(self, execution: Execution) -> list[Write]:
        ref = self._ref(EXECUTIONS, execution.id)
        doc = execution_doc(execution.model_copy(update={"events": ()}), len(execution.events))
        writes: list[Write] = [lambda batch: batch.create(ref, doc)]
        return writes + self._event_writes(ref, execution.events, first_seq=1)

    def _event_writes(
        self, ref: AsyncDocumentReference, events: Sequence[Event], first_seq: int
    ) -> list[Write]:
        def create(seq: int, event: Event) -> Write:
            event_ref = ref.collection(EVENTS).document(event_id(seq))
            return lambda batch: batch.create(event_ref, event_doc(event))

        return [create(seq, event) for seq, event in enumerate(events, start=first_seq)]

    def _summary_writes_for_new(
        self, tasks: dict[str, Snapshot], executions: Iterable[Execution]
    ) -> list[Write]:
        """Point each task at its newest execution, unless it knows a newer one already."""
        writes = []
        for task_id, newest in _newest_per_task(executions).items():
            latest = summary_from_doc((tasks[task_id].to_dict() or {}).get("latest"))
            if latest is None or latest.id < newest.id:
                writes.append(self._summary_write(tasks[task_id], newest))
        return writes

    def _summary_write(self, task: Snapshot, execution: Execution) -> Write:
        fields, option = latest_fields(execution.summary()), self._precondition(task)
        return lambda batch: batch.update(task.reference, fields, option)

    async def _point_tasks_at_newest(self, executions: Sequence[Execution]) -> None:
        tasks = await self._read(TASKS, {execution.task_id for execution in executions})
        present = [execution for execution in executions if execution.task_id in tasks]
        await self._commit_in_chunks(self._summary_writes_for_new(tasks, present))

    @_translating_errors
    async def get_execution(self, execution_id: str) -> Execution:
        """The execution, then the first `event_count` events of its log: events are only
        ever appended, in the same commit as the count, so the two agree."""
        ref = self._ref(EXECUTIONS, execution_id)
        snapshot = await ref.get()
        if not snapshot.exists:
            raise ExecutionNotFound(execution_id)
        doc = snapshot.to_dict() or {}
        events = await self._events(ref, doc["event_count"])
        if len(events) < doc["event_count"]:  # deleted while we read it
            raise ExecutionNotFound(execution_id)
        return execution_from_doc(execution_id, doc, events)

    async def _events(self, ref: AsyncDocumentReference, count: int) -> list[Event]:
        if count == 0:
            return []
        query = ref.collection(EVENTS).order_by(DOCUMENT_ID).limit(count)
        return [event_from_doc(snapshot.to_dict() or {}) async for snapshot in query.stream()]

    @_translating_errors
    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        def execution_of(snapshot: Snapshot) -> Execution:
            return execution_from_doc(snapshot.id, snapshot.to_dict() or {})

        return await self._scan(
            execution_plan(query),
            query.cursor,
            query.limit,
            execution_of,
            lambda execution: execution_matches(execution, query),
        )

    @_translating_errors
    async def modify_executions(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        changes: list[Change] = []
        for group in _chunks(ids, EXECUTIONS_PER_COMMIT):
            async with self._locks.holding(group):
                changes += await self._retrying(functools.partial(self._modify_once, group, fn))
        return changes

    async def _modify_once(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        """Read, let `fn` decide, and write every applied change in one commit whose writes
        require each document to be as read."""
        snapshots = await self._read(EXECUTIONS, ids)
        before = {i: execution_from_doc(i, s.to_dict() or {}) for i, s in snapshots.items()}
        changes = apply_in_order(ids, dict(before), fn)
        applied = [change for change in changes if change.changed]
        if applied:
            summaries = await self._summary_writes_for_changed(before, applied)
            await self._commit([*self._change_writes(snapshots, applied), *summaries])
        return changes

    def _change_writes(
        self, snapshots: dict[str, Snapshot], applied: Sequence[Change]
    ) -> list[Write]:
        """Each changed execution's final state, once, and its new events, numbered on."""
        final = {change.execution.id: change.execution for change in applied}
        new_events: defaultdict[str, list[Event]] = defaultdict(list)
        for change in applied:
            new_events[change.execution.id].extend(change.new_events)
        writes: list[Write] = []
        for execution_id, execution in final.items():
            writes += self._state_writes(
                snapshots[execution_id], execution, new_events[execution_id]
            )
        return writes

    def _state_writes(
        self, snapshot: Snapshot, execution: Execution, events: Sequence[Event]
    ) -> list[Write]:
        known = (snapshot.to_dict() or {})["event_count"]
        doc = execution_doc(execution.model_copy(update={"events": ()}), known + len(events))
        option = self._precondition(snapshot)
        write: Write = lambda batch: batch.update(snapshot.reference, doc, option)  # noqa: E731
        return [write, *self._event_writes(snapshot.reference, events, first_seq=known + 1)]

    async def _summary_writes_for_changed(
        self, before: dict[str, Execution], applied: Sequence[Change]
    ) -> list[Write]:
        """Refresh the summary of each task whose latest execution's summary changed."""
        final = {change.execution.id: change.execution for change in applied}
        moved = {i: e for i, e in final.items() if e.summary() != before[i].summary()}
        if not moved:
            return []
        tasks = await self._read(TASKS, {execution.task_id for execution in moved.values()})
        return [
            self._summary_write(task, moved[latest.id])
            for task in tasks.values()
            if (latest := summary_from_doc((task.to_dict() or {}).get("latest"))) is not None
            and latest.id in moved
        ]

    # Statistics

    @_translating_errors
    async def stats(self) -> StoreStats:
        executions = self.client.collection(EXECUTIONS)
        counts = await asyncio.gather(
            self._count(self.client.collection(TASKS)),
            *(
                self._count(executions.where(filter=FieldFilter("status", "==", str(s))))
                for s in TaskStatus
            ),
        )
        per_status = dict(zip(TaskStatus, counts[1:], strict=True))
        return StoreStats(tasks=counts[0], executions={s: n for s, n in per_status.items() if n})

    async def _count(self, query: Any) -> int:
        result = await query.count().get()
        return int(result[0][0].value)


def _id_of(item: _Identified) -> str:
    return item.id
