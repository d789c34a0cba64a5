"""Named modifiers: the changes the core asks a store to make to executions.

`Store.modify_executions(ids, fn)` calls `fn` on each execution inside one transaction. The
core never passes an arbitrary function there: it passes one of these frozen dataclasses,
which are callables (a `ModifyFn`) *and* plain data. Plain data can cross a process boundary,
so a remote store (`grpc://`) sends the modifier by name and the datastore applies it next
to the database, in one round trip, with the same pure functions of `sublim.core.model`.

A new kind of change is one more dataclass here, and one more case in the datastore's codec.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sublim.core.model import (
    Change,
    Event,
    Execution,
    TaskStatus,
    Update,
    apply_update,
    transition,
)
from sublim.core.policy import lost_attempt

S = TaskStatus


def fold_updates(execution: Execution, updates: Sequence[Update]) -> Change:
    """Apply several updates of one execution, oldest first, as one change."""
    change = Change(outcome="ignored", execution=execution)
    events: list[Event] = []
    for update in sorted(updates, key=lambda u: (u.attempt, u.seq)):
        step = apply_update(change.execution, update)
        if step.changed:
            events.extend(step.new_events)
            change = step
    if events or change.changed:
        return change.model_copy(update={"new_events": tuple(events)})
    return change


def _ignored(execution: Execution, reason: str) -> Change:
    return Change(outcome="ignored", execution=execution, reason=reason)


def _by_execution(updates: Sequence[Update]) -> Mapping[str, list[Update]]:
    grouped: defaultdict[str, list[Update]] = defaultdict(list)
    for update in updates:
        grouped[update.execution_id].append(update)
    return grouped


@dataclass(frozen=True, slots=True)
class ApplyUpdates:
    """Record executors' updates: each execution folds the updates that name it."""

    updates: tuple[Update, ...]
    _grouped: Mapping[str, list[Update]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_grouped", _by_execution(self.updates))

    @property
    def execution_ids(self) -> list[str]:
        """The executions these updates name, each once, in order of first mention."""
        return list(self._grouped)

    def __call__(self, execution: Execution) -> Change:
        return fold_updates(execution, self._grouped.get(execution.id, []))


@dataclass(frozen=True, slots=True)
class MarkDispatched:
    """Record a published execution Dispatched, unless a worker's update came first."""

    reason: str

    def __call__(self, execution: Execution) -> Change:
        if execution.status != S.READY_FOR_DISPATCH:
            return _ignored(execution, "already past dispatch")
        return transition(execution, S.DISPATCHED, reason=self.reason)


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel an execution that has not finished (refused if it has)."""

    by: str = "user"

    def __call__(self, execution: Execution) -> Change:
        return transition(execution, S.CANCELLED, reason=f"cancelled by {self.by}")


@dataclass(frozen=True, slots=True)
class MarkLostIfSilent:
    """Record a running attempt Incomplete if its last sign of life is older than `cutoff`."""

    cutoff: datetime

    def __call__(self, execution: Execution) -> Change:
        last_sign = execution.heartbeat_at or execution.created_at
        if execution.status != S.RUNNING or last_sign >= self.cutoff:
            return _ignored(execution, "alive")
        reason = f"no heartbeat since {last_sign.isoformat()}: worker lost"
        return lost_attempt(execution, reason)


@dataclass(frozen=True, slots=True)
class ClaimUnpublished:
    """A sweeper's claim on an execution recorded but not yet published, so that of several
    sweepers sharing a store only one publishes it. `heartbeat_at`, unused before an
    execution runs, holds the claim's time; a claim older than `expired_before` (left by a
    sweeper that died) may be taken again."""

    now: datetime
    expired_before: datetime

    def __call__(self, execution: Execution) -> Change:
        claimed_at = execution.heartbeat_at
        if execution.status != S.READY_FOR_DISPATCH:
            return _ignored(execution, "published meanwhile")
        if claimed_at is not None and claimed_at >= self.expired_before:
            return _ignored(execution, "claimed by another sweeper")
        claimed = execution.model_copy(update={"heartbeat_at": self.now})
        return Change(outcome="applied", execution=claimed)


@dataclass(frozen=True, slots=True)
class Unblock:
    """A Blocked execution whose dependencies passed: ReadyForDispatch, to be published."""

    reason: str

    def __call__(self, execution: Execution) -> Change:
        if execution.status != S.BLOCKED:
            return _ignored(execution, "not blocked")
        return transition(execution, S.READY_FOR_DISPATCH, reason=self.reason)


@dataclass(frozen=True, slots=True)
class CancelBlocked:
    """A Blocked execution one of whose dependencies did not pass: Cancelled, with why."""

    reason: str

    def __call__(self, execution: Execution) -> Change:
        if execution.status != S.BLOCKED:
            return _ignored(execution, "not blocked")
        return transition(execution, S.CANCELLED, reason=self.reason)


#: Every change the core makes to executions, as data.
Modifier = (
    ApplyUpdates
    | MarkDispatched
    | Cancel
    | MarkLostIfSilent
    | ClaimUnpublished
    | Unblock
    | CancelBlocked
)
