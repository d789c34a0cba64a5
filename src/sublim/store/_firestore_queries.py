"""How the Firestore store turns a list query into a Firestore query, and which composite
index each one needs.

Every list is ordered by id, newest first (`order_by("id", DESCENDING)`, on a copy of the
document id: the emulator refuses descending scans of document keys) or, when an execution query
asks, oldest first; pages follow `start_after` cursors.

The plan sends Firestore the filters an index can serve (equalities, one `in`, one
`array-contains`) and leaves the rest (further labels, time ranges) to the store, which
checks every filter on each document it reads (`sublim.store._common`). Time ranges stay out
of the query on purpose: an inequality on a field makes Firestore order by that field first,
which would break id order and id cursors.

`IndexShape` is what a query needs from `deploy/gcp/firestore.indexes.json`; a test checks
that every shape these plans can produce is declared there, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sublim.store._firestore_docs import EXECUTIONS, TASKS, label_pair
from sublim.store.base import ExecutionQuery, TaskQuery

Operator = Literal["==", "in", "array_contains"]


@dataclass(frozen=True, slots=True)
class Filter:
    field: str
    op: Operator
    value: Any


@dataclass(frozen=True, slots=True)
class IndexShape:
    """A composite index: equality (and `in`) fields, an optional `array-contains` field,
    then `id`, descending or ascending."""

    collection: str
    equalities: frozenset[str] = frozenset()
    contains: str | None = None
    descending: bool = True

    @property
    def needs_composite_index(self) -> bool:
        """Without filters, `id` is served by the automatic single-field indexes."""
        return bool(self.equalities) or self.contains is not None


@dataclass(frozen=True, slots=True)
class QueryPlan:
    collection: str
    filters: tuple[Filter, ...]
    descending: bool = True

    @property
    def shape(self) -> IndexShape:
        equalities = frozenset(f.field for f in self.filters if f.op != "array_contains")
        contains = next((f.field for f in self.filters if f.op == "array_contains"), None)
        return IndexShape(self.collection, equalities, contains, self.descending)


def task_plan(query: TaskQuery) -> QueryPlan:
    """Topic, latest status and the first label (by key) in Firestore; other labels here."""
    filters = []
    if query.topic is not None:
        filters.append(Filter("topic", "==", query.topic))
    if query.status is not None:
        filters.append(Filter("latest_status", "==", str(query.status)))
    if query.labels:
        key = min(query.labels)
        filters.append(Filter("label_pairs", "array_contains", label_pair(key, query.labels[key])))
    return QueryPlan(TASKS, tuple(filters))


def execution_plan(query: ExecutionQuery) -> QueryPlan:
    """`waiting_on` alone (few executions wait on one), else the task (else the topic: a
    task's executions all share its topic) and the statuses in Firestore; the time ranges
    and the rest here."""
    descending = not query.oldest_first
    if query.waiting_on is not None:
        waiting = Filter("depends_on", "array_contains", query.waiting_on)
        return QueryPlan(EXECUTIONS, (waiting,), descending)
    filters = []
    if query.task_id is not None:
        filters.append(Filter("task_id", "==", query.task_id))
    elif query.topic is not None:
        filters.append(Filter("topic", "==", query.topic))
    if query.statuses:
        filters.append(Filter("status", "in", sorted(str(s) for s in query.statuses)))
    return QueryPlan(EXECUTIONS, tuple(filters), descending)
