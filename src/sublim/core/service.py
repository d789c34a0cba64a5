"""The core service: the logic of the API, without HTTP.

One explicit object, built from a store and a broker, that creates, changes and deletes tasks,
enqueues executions, records the updates executors send, and sweeps what was lost. The HTTP
API, the CLI's `up` and the testing harness are thin layers over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sublim.broker.base import Broker, Delivery, Message, check_fits, check_name, message_size
from sublim.config import Settings
from sublim.core.backends import broker_from_url, store_from_url
from sublim.core.batching import Batcher
from sublim.core.caps import check_depends_on, check_labels
from sublim.core.feed import ChangeFeed
from sublim.core.holds import Holds, judge_dependencies
from sublim.core.loops import Sweeper, UpdatesConsumer
from sublim.core.messages import (
    ClaimAnswers,
    ControlMessage,
    control_message,
    control_topic,
    decode_update,
    request_key,
    request_message,
)
from sublim.core.model import (
    Change,
    Event,
    Execution,
    ExecutionRequest,
    TaskRecord,
    TaskStatus,
    Update,
    holds_claim,
    utcnow,
)
from sublim.core.modifiers import (
    ApplyUpdates,
    Cancel,
    ClaimUnpublished,
    MarkDispatched,
    MarkLostIfSilent,
)
from sublim.core.modifiers import fold_updates as fold_updates  # re-exported: its former home
from sublim.core.policy import next_update_of, too_large
from sublim.errors import (
    ExecutionNotFound,
    IllegalTransition,
    InvalidInput,
    MessageTooLarge,
)
from sublim.store.base import (
    ExecutionQuery,
    ModifyFn,
    Page,
    Store,
    TaskPatch,
    TaskQuery,
    TransactionalOutbox,
)

log = logging.getLogger("sublim.service")

S = TaskStatus
T = TypeVar("T")


#: The Dispatched event of an execution whose request a sweeper found already on the broker.
ALREADY_HELD = "its request was already on the broker (its publisher died before recording it)"


def default_subscription(topic: str) -> str:
    return f"{topic}-sub"


#: The most tasks one `create_tasks` call takes (and `POST /v1/tasks:batch`).
MAX_TASKS_PER_CALL = 1000


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task of `Service.create_tasks`: the arguments of `Service.create_task`."""

    topic: str
    payload: dict[str, Any] | None = None
    name: str | None = None
    labels: dict[str, str] | None = None
    execute: bool = False
    max_attempts: int | None = None


@dataclass(frozen=True, slots=True)
class _Enqueue:
    """An execution to record and publish, with its task when that is new too (stored in the
    same transaction where the store is the broker's database)."""

    execution: Execution
    task: TaskRecord | None = None


@dataclass(frozen=True, slots=True)
class SweepReport:
    republished: int = 0
    lost: int = 0


class Service:
    """Tasks, executions and updates over one store and one broker."""

    def __init__(self, store: Store, broker: Broker, settings: Settings | None = None) -> None:
        self.store = store
        self.broker = broker
        self.settings = settings or Settings()
        self._subscribed: set[str] = set()
        #: Executions this process has recorded and is publishing: not the sweeper's to publish.
        self._publishing: set[str] = set()
        self.feed = ChangeFeed()
        self._enqueuer: Batcher[_Enqueue, Execution] = Batcher(
            self._dispatch_batch, max_batch=MAX_TASKS_PER_CALL, name="enqueue"
        )
        self._recorder: Batcher[Update, Change | None] = Batcher(self._record_batch, name="record")
        #: The store, when it can record executions and publish them in one transaction.
        self._outbox = _transactional_outbox(store, broker)
        self.holds = Holds(
            store,
            self._modify,
            lambda executions, reason: self._publish(executions, reason=reason),
            self._claim_unpublished,
            self.settings.concurrency_limits,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Service:
        store = store_from_url(settings.effective_store_url, settings)
        broker = broker_from_url(settings.broker_url, settings)
        return cls(store, broker, settings)

    async def open(self) -> None:
        await self.store.open()
        await self.broker.open()
        await self._ensure_updates_subscription()

    async def _ensure_updates_subscription(self) -> None:
        """The pull subscription of the updates topic, unless updates are pushed to the API."""
        if self.settings.pull_updates:
            topic = self.settings.updates_topic
            await self.broker.ensure_subscription(topic, default_subscription(topic))

    async def close(self) -> None:
        await self._enqueuer.close()
        await self._recorder.close()
        await self.broker.close()
        await self.store.close()

    async def __aenter__(self) -> Service:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ping(self) -> None:
        """Reach the store and the broker with cheap calls; raises `BackendError` if one is down."""
        await self.store.list_tasks(TaskQuery(limit=1))
        await self._ensure_updates_subscription()

    # -- tasks -------------------------------------------------------------------------------

    async def create_task(
        self,
        topic: str,
        payload: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        execute: bool = False,
        max_attempts: int | None = None,
    ) -> tuple[TaskRecord, Execution | None]:
        """Create a task; with `execute`, also enqueue its first execution."""
        spec = TaskSpec(topic, payload, name, labels, execute, max_attempts)
        task, first = self._task_of(spec)
        if first is None:
            return await self.store.create_task(task), None
        execution = await self._enqueuer(_Enqueue(first, task))
        return task.model_copy(update={"latest_execution": execution.summary()}), execution

    async def create_tasks(
        self, specs: Sequence[TaskSpec]
    ) -> list[tuple[TaskRecord, Execution | None]]:
        """Create tasks (at most `MAX_TASKS_PER_CALL`) in one store call, then enqueue the
        first executions of those with `execute` together, on the path of every enqueue
        (recorded ReadyForDispatch, published, marked Dispatched; or the same-database
        outbox): a committed execution is never lost. Every spec is checked first: nothing
        is stored if one is invalid (`InvalidInput`, or `MessageTooLarge`, naming its
        index). Returns each task (with its latest execution) and its execution, in order."""
        if len(specs) > MAX_TASKS_PER_CALL:
            raise InvalidInput(f"{len(specs)} tasks: at most {MAX_TASKS_PER_CALL} per call")
        prepared = [_at_index(index, self._task_of, spec) for index, spec in enumerate(specs)]
        if not_executed := [task for task, first in prepared if first is None]:
            await self.store.create_tasks(not_executed)
        firsts = [_Enqueue(first, task) for task, first in prepared if first is not None]
        executions = iter(await asyncio.gather(*map(self._enqueuer.submit, firsts)))
        created: list[tuple[TaskRecord, Execution | None]] = []
        for task, first in prepared:
            if first is None:
                created.append((task, None))
                continue
            execution = next(executions)
            summary = execution.summary()
            created.append((task.model_copy(update={"latest_execution": summary}), execution))
        return created

    def _task_of(self, spec: TaskSpec) -> tuple[TaskRecord, Execution | None]:
        """The task a spec asks for and, with `execute`, its first execution; checked
        (`InvalidInput`, `MessageTooLarge`) before anything is stored."""
        check_name("topic", spec.topic)
        task = TaskRecord(
            name=spec.name or spec.topic,
            topic=spec.topic,
            payload=spec.payload or {},
            labels=spec.labels or {},
        )
        check_labels(task.labels)
        first = self._new_execution(task, spec.max_attempts) if spec.execute else None
        if first is not None:
            self._check_fits(first)
        return task, first

    async def get_task(self, task_id: str) -> TaskRecord:
        return await self.store.get_task(task_id)

    async def list_tasks(self, query: TaskQuery) -> Page[TaskRecord]:
        return await self.store.list_tasks(query)

    async def update_task(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        return await self.store.update_task(task_id, patch)

    async def delete_task(self, task_id: str) -> None:
        await self.store.delete_task(task_id)

    # -- executions --------------------------------------------------------------------------

    async def enqueue(
        self, task_id: str, *, max_attempts: int | None = None, depends_on: Sequence[str] = ()
    ) -> Execution:
        """Record a new execution of a task and publish it (Initialized → ReadyForDispatch →
        Dispatched). If the process dies between the record and the publish, the sweeper
        publishes it later: a committed execution is never lost. With `depends_on`, it waits
        Blocked until those executions pass (see `sublim.core.holds`). `MessageTooLarge` when
        the broker would refuse its request, before anything is stored."""
        check_depends_on(depends_on)
        task = await self.store.get_task(task_id)
        if depends_on:
            return await self._enqueue_blocked(task, max_attempts, depends_on)
        execution = self._new_execution(task, max_attempts)
        self._check_fits(execution)
        return await self._enqueuer(_Enqueue(execution))

    async def _enqueue_blocked(
        self, task: TaskRecord, max_attempts: int | None, depends_on: Sequence[str]
    ) -> Execution:
        dependencies = await self.holds.dependencies_of(depends_on)
        execution = self._new_execution(task, max_attempts, waiting_on=depends_on)
        self._check_fits(execution)
        await self.store.create_executions([execution])
        self.feed.publish_created([execution])
        await self.holds.judge_blocked([execution.model_copy(update={"events": ()})])
        if judge_dependencies(dependencies).ready:
            return await self.store.get_execution(execution.id)
        return execution

    async def retry(self, execution_id: str, *, max_attempts: int | None = None) -> Execution:
        """Enqueue a new execution of a finished execution's task; its first event names the
        execution it retries. `IllegalTransition` while the execution has not finished."""
        previous = await self.store.get_execution(execution_id)
        if not previous.finished:
            raise IllegalTransition(
                f"execution {execution_id} has not finished ({previous.status}): cancel it first"
            )
        task = await self.store.get_task(previous.task_id)
        attempts = max_attempts or previous.max_attempts
        execution = self._new_execution(task, attempts, requested=f"retry of {execution_id}")
        self._check_fits(execution)
        return await self._enqueuer(_Enqueue(execution))

    def _new_execution(
        self,
        task: TaskRecord,
        max_attempts: int | None,
        *,
        requested: str = "execution requested",
        waiting_on: Sequence[str] = (),
    ) -> Execution:
        now = utcnow()
        first = Event(status=S.INITIALIZED, at=now, attempt=1, reason=requested)
        second = Event(status=S.READY_FOR_DISPATCH, at=now, attempt=1, reason="recorded")
        if waiting_on:
            waiting = f"waiting on {', '.join(waiting_on)}"
            second = Event(status=S.BLOCKED, at=now, attempt=1, reason=waiting)
        return Execution(
            task_id=task.id,
            topic=task.topic,
            status=second.status,
            max_attempts=max_attempts or self.settings.max_attempts,
            payload=task.payload,
            created_at=now,
            depends_on=tuple(waiting_on),
            events=(first, second),
        )

    def _check_fits(self, execution: Execution) -> None:
        """`MessageTooLarge` for an execution whose request the broker would refuse."""
        message = request_message(_request_of(execution))
        check_fits(message, self.broker.max_message_bytes, "execution request")

    async def _dispatch_batch(self, items: Sequence[_Enqueue]) -> list[Execution]:
        executions = [item.execution for item in items]
        held = [e for e in executions if self.holds.limited(e.topic)]
        free = [e for e in executions if not self.holds.limited(e.topic)]
        new_tasks = [item.task for item in items if item.task is not None]
        if new_tasks and (self._outbox is None or not free):
            await self.store.create_tasks(new_tasks)
            new_tasks = []
        done = {e.id: e for e in await self._dispatch_free(free, new_tasks)} if free else {}
        if held:
            done |= {e.id: e for e in await self._dispatch_held(held)}
        return [done[e.id] for e in executions]

    async def _dispatch_free(
        self, executions: Sequence[Execution], new_tasks: Sequence[TaskRecord]
    ) -> list[Execution]:
        """Record and publish executions; `new_tasks` (their tasks, not stored yet) only
        ever come with the outbox, which stores them in its transaction."""
        if self._outbox is not None:
            return await self._record_and_publish_at_once(self._outbox, executions, new_tasks)
        with self._being_published(executions):
            await self.store.create_executions(executions)
            self.feed.publish_created(executions)
            return await self._publish(executions, reason="published")

    @contextlib.contextmanager
    def _being_published(self, executions: Sequence[Execution]) -> Iterator[None]:
        """From the record of executions until their publish is recorded (or failed), this
        process's sweeper leaves them alone: a publish slower than `outbox_grace_seconds` is
        not a lost one, and publishing it again would deliver attempt 1 twice."""
        ids = {e.id for e in executions}
        self._publishing |= ids
        try:
            yield
        finally:
            self._publishing -= ids

    async def _dispatch_held(self, executions: Sequence[Execution]) -> list[Execution]:
        """Record executions of limited topics; publish as many as their topics have room."""
        await self.store.create_executions(executions)
        self.feed.publish_created(executions)
        published: dict[str, Execution] = {}
        for topic in sorted({e.topic for e in executions}):
            published |= {e.id: e for e in await self.holds.fill_slots(topic)}
        return [_with_log_of(published.get(e.id), e) for e in executions]

    async def _modify(self, ids: Sequence[str], fn: ModifyFn) -> list[Change]:
        """`store.modify_executions`, telling the feed what changed."""
        changes = await self.store.modify_executions(ids, fn)
        self.feed.publish(changes)
        return changes

    async def _record_and_publish_at_once(
        self,
        outbox: TransactionalOutbox,
        executions: Sequence[Execution],
        new_tasks: Sequence[TaskRecord],
    ) -> list[Execution]:
        """The same-database outbox: executions are recorded Dispatched together with their
        request messages (and their tasks, when new), in one transaction, so no crash leaves
        one without the other."""
        dispatched = [MarkDispatched("published")(e).execution for e in executions]
        messages = _request_messages(dispatched)
        for topic in messages:
            await self._ensure_topic(topic)
        await outbox.create_and_publish(dispatched, messages, new_tasks)
        self.feed.publish_created(dispatched)
        return dispatched

    async def _publish(self, executions: Sequence[Execution], *, reason: str) -> list[Execution]:
        """Publish the executions' requests and record them Dispatched; one whose request is
        over the broker's limit ends Error instead (it could never be published), and the
        others of its batch go on."""
        messages = {e.id: request_message(_request_of(e)) for e in executions}
        fitting, refusals = _by_size(executions, messages, self.broker.max_message_bytes)
        held = await self._publish_requests(fitting, messages)
        changes = await self._mark_dispatched([e.id for e in fitting if e.id not in held], reason)
        changes += await self._mark_dispatched(sorted(held), ALREADY_HELD)
        changes += await self._refuse(refusals)
        current = {change.execution.id: change for change in changes}
        return [_followed_by(e, current.get(e.id)) for e in executions]

    async def _publish_requests(
        self, executions: Sequence[Execution], messages: Mapping[str, Message]
    ) -> set[str]:
        """Publish each execution's request; returns the ids of the executions whose request
        the broker already held, and dropped (a dedupe broker keeps one copy per key)."""
        by_topic: dict[str, list[Message]] = defaultdict(list)
        for execution in executions:
            by_topic[execution.topic].append(messages[execution.id])
        dropped: set[str] = set()
        for topic, batch in by_topic.items():
            await self._ensure_topic(topic)
            dropped |= await self.broker.publish(topic, batch)
        return {e.id for e in executions if request_key(e.id, e.attempt) in dropped}

    async def _refuse(self, refusals: Sequence[Update]) -> list[Change]:
        """End Error the executions whose request is too large to publish (so that no
        sweeper tries again), as an update in the executor's place."""
        if not refusals:
            return []
        for refusal in refusals:
            log.error("execution %s not published: %s", refusal.execution_id, refusal.reason)
        modifier = ApplyUpdates(tuple(refusals))
        changes = await self._modify(modifier.execution_ids, modifier)
        await self.holds.release(_finished_by(changes))
        return changes

    async def _mark_dispatched(self, ids: Sequence[str], reason: str) -> list[Change]:
        return await self._modify(ids, MarkDispatched(reason)) if ids else []

    async def _ensure_topic(self, topic: str) -> None:
        if topic not in self._subscribed:
            await self.broker.ensure_subscription(topic, default_subscription(topic))
            self._subscribed.add(topic)

    async def get_execution(self, execution_id: str) -> Execution:
        return await self.store.get_execution(execution_id)

    async def list_executions(self, query: ExecutionQuery) -> Page[Execution]:
        return await self.store.list_executions(query)

    async def cancel(self, execution_id: str, *, by: str = "user") -> Execution:
        """Cancel an execution that has not finished; `IllegalTransition` if it has."""
        changes = await self._modify([execution_id], Cancel(by))
        if not changes:
            raise ExecutionNotFound(execution_id)
        if not changes[0].changed:
            raise IllegalTransition(changes[0].reason or "cannot cancel")
        await self._tell_nodes_to_cancel([execution_id], by)
        await self.holds.release(_finished_by(changes))
        return await self.store.get_execution(execution_id)

    async def _tell_nodes_to_cancel(self, execution_ids: Sequence[str], by: str) -> None:
        """Every execution node hears it: a queued request is skipped, a running one stopped."""
        messages = [control_message(ControlMessage(execution_id=i, by=by)) for i in execution_ids]
        await self.broker.publish(control_topic(self.settings.updates_topic), messages)

    # -- updates -----------------------------------------------------------------------------

    async def record_update(self, update: Update) -> Change | None:
        """Record one update (batched with concurrent callers); None if its execution is unknown."""
        return await self._recorder(update)

    async def record_updates(self, updates: Sequence[Update]) -> list[Change]:
        """Apply updates to their executions in one store transaction."""
        modifier = ApplyUpdates(tuple(updates))
        changes = await self._modify(modifier.execution_ids, modifier)
        _log_unknown(set(modifier.execution_ids) - {c.execution.id for c in changes})
        await self._answer_claims(updates, changes)
        if still_running := _running_after_cancel(changes, updates):
            await self._tell_nodes_to_cancel(still_running, "user (repeated: it still ran)")
        await self.holds.release(_finished_by(changes))
        return changes

    async def _answer_claims(self, updates: Sequence[Update], changes: Sequence[Change]) -> None:
        """Tell the nodes which of the attempts they claimed they may run (after the record,
        which decides it, is committed)."""
        if any(u.claim is not None for u in updates):
            answers = answer_claims(updates, {c.execution.id: c.execution for c in changes})
            topic = control_topic(self.settings.updates_topic)
            await self.broker.publish(topic, [control_message(answers)])

    async def _record_batch(self, updates: Sequence[Update]) -> list[Change | None]:
        changes = {c.execution.id: c for c in await self.record_updates(updates)}
        return [changes.get(u.execution_id) for u in updates]

    async def consume_updates(self, stop: asyncio.Event, *, batch: int = 500) -> None:
        """Pull updates from the updates topic and record them until `stop` is set (the
        `UpdatesConsumer` loop)."""
        await UpdatesConsumer(self, batch).run(stop)

    async def record_pending_updates(self, *, batch: int = 500) -> int:
        """Record every update waiting on the updates topic now; returns how many."""
        recorded = 0
        while pulled := await self.record_updates_once(batch=batch, wait=0):
            recorded += pulled
        return recorded

    async def record_updates_once(self, *, batch: int = 500, wait: float = 0) -> int:
        """Pull one batch of updates from the updates topic, waiting up to `wait` seconds for
        one, and record it; returns how many updates it held."""
        subscription = default_subscription(self.settings.updates_topic)
        lease = self.settings.lease_seconds
        deliveries = await self.broker.pull(subscription, batch, lease=lease, wait=wait)
        if deliveries:
            await self._record_deliveries(subscription, deliveries)
        return len(deliveries)

    async def _record_deliveries(self, subscription: str, deliveries: Sequence[Delivery]) -> None:
        updates = []
        for delivery in deliveries:
            try:
                updates.append(decode_update(delivery.data))
            except InvalidInput as exc:
                log.error("dropping undecodable update message %s: %s", delivery.message_id, exc)
        await self.record_updates(updates)
        await self.broker.ack(subscription, [d.receipt for d in deliveries])

    # -- sweeping ----------------------------------------------------------------------------

    async def sweep(self) -> SweepReport:
        """Publish what was committed but not published; record lost attempts Incomplete."""
        republished = await self._sweep_outbox()
        lost = await self._sweep_lost_attempts()
        await self.holds.sweep()
        return SweepReport(republished=republished, lost=lost)

    async def _sweep_outbox(self) -> int:
        cutoff = utcnow() - timedelta(seconds=self.settings.outbox_grace_seconds)
        query = ExecutionQuery(
            statuses=frozenset({S.READY_FOR_DISPATCH}), created_before=cutoff, limit=500
        )
        listed = (await self.store.list_executions(query)).items
        stuck = [
            e
            for e in listed
            if not self.holds.limited(e.topic)  # those wait for a slot
            and e.id not in self._publishing
        ]
        claimed = await self._claim_unpublished(stuck) if stuck else []
        if claimed:
            log.warning("publishing %d executions recorded but never published", len(claimed))
            await self._publish(claimed, reason="published by the sweeper")
        return len(claimed)

    async def _claim_unpublished(self, stuck: Sequence[Execution]) -> list[Execution]:
        """Claim executions for publishing, atomically in the store, so that of several
        sweepers (API replicas sharing a store) only one publishes each; a claim left by a
        sweeper that died passes after `outbox_grace_seconds`."""
        now = utcnow()
        claim = ClaimUnpublished(now, now - timedelta(seconds=self.settings.outbox_grace_seconds))
        changes = await self._modify([e.id for e in stuck], claim)
        return [change.execution for change in changes if change.changed]

    async def _sweep_lost_attempts(self) -> int:
        cutoff = utcnow() - timedelta(seconds=self.settings.heartbeat_timeout_seconds)
        query = ExecutionQuery(statuses=frozenset({S.RUNNING}), heartbeat_before=cutoff, limit=500)
        silent = (await self.store.list_executions(query)).items
        if not silent:
            return 0
        lost_if_silent = MarkLostIfSilent(cutoff)
        changes = await self._modify([e.id for e in silent], lost_if_silent)
        lost = sum(change.changed for change in changes)
        if lost:
            log.warning("%d running attempts stopped heartbeating: recorded Incomplete", lost)
        return lost

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """Sweep every `sweep_interval_seconds` until `stop` is set (the `Sweeper` loop)."""
        await Sweeper(self).run(stop)


def _at_index(index: int, check: Callable[[TaskSpec], T], spec: TaskSpec) -> T:
    """`check(spec)`, its error naming the spec's index (`tasks[i]: ...`)."""
    try:
        return check(spec)
    except MessageTooLarge as exc:
        raise MessageTooLarge(f"tasks[{index}]: {exc}", limit=exc.limit) from exc
    except (InvalidInput, ValueError) as exc:
        raise InvalidInput(f"tasks[{index}]: {exc}") from exc


def _request_of(execution: Execution) -> ExecutionRequest:
    return ExecutionRequest(
        execution_id=execution.id,
        task_id=execution.task_id,
        topic=execution.topic,
        attempt=execution.attempt,
        max_attempts=execution.max_attempts,
        payload=execution.payload,
    )


def _by_size(
    executions: Sequence[Execution], messages: Mapping[str, Message], limit: int
) -> tuple[list[Execution], list[Update]]:
    """The executions whose request fits `limit`, and an Error update for each other one."""
    fitting: list[Execution] = []
    refusals: list[Update] = []
    for execution in executions:
        size = message_size(messages[execution.id])
        if size <= limit:
            fitting.append(execution)
        else:
            base = next_update_of(execution, S.ERROR)
            refusals.append(too_large(base, of="request", size=size, limit=limit))
    return fitting, refusals


def _transactional_outbox(store: Store, broker: Broker) -> TransactionalOutbox | None:
    if isinstance(store, TransactionalOutbox) and store.shares_transactions_with(broker):
        return store
    return None


def _request_messages(executions: Sequence[Execution]) -> dict[str, list[Message]]:
    """The request message of each execution, by topic."""
    by_topic: dict[str, list[Message]] = defaultdict(list)
    for execution in executions:
        by_topic[execution.topic].append(request_message(_request_of(execution)))
    return by_topic


def answer_claims(updates: Sequence[Update], recorded: dict[str, Execution]) -> ClaimAnswers:
    """Grant each claim whose attempt the record holds (see `holds_claim`), deny the rest."""
    granted: list[str] = []
    denied: list[str] = []
    for update in updates:
        if update.claim is not None:
            held = holds_claim(recorded.get(update.execution_id), update)
            (granted if held else denied).append(update.claim)
    return ClaimAnswers(granted=tuple(granted), denied=tuple(denied))


def _followed_by(execution: Execution, change: Change | None) -> Execution:
    """The execution after `change`, keeping the event log it had (a store hands the
    modifier executions without their logs)."""
    if change is None:
        return execution
    events = (*execution.events, *change.new_events)
    return change.execution.model_copy(update={"events": events})


def _running_after_cancel(changes: Sequence[Change], updates: Sequence[Update]) -> list[str]:
    """Executions cancelled in the store that a worker reports running: a node that started
    after the cancellation was broadcast, which must hear it again."""
    cancelled = {c.execution.id for c in changes if c.execution.status == S.CANCELLED}
    running = {u.execution_id for u in updates if u.status == S.RUNNING and not u.complete}
    return sorted(cancelled & running)


def _finished_by(changes: Sequence[Change]) -> list[Execution]:
    return [c.execution for c in changes if c.changed and c.execution.finished]


def _with_log_of(published: Execution | None, recorded: Execution) -> Execution:
    """The execution as published (when it was), with the event log it was created with."""
    if published is None:
        return recorded
    if published.events:
        return published
    return published.model_copy(update={"events": recorded.events})


def _log_unknown(execution_ids: set[str]) -> None:
    for execution_id in execution_ids:
        log.warning("update for unknown execution %s ignored", execution_id)
