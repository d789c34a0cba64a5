"""Converting tasks, executions and events to Firestore documents and back.

The layout (see docs/engines/firestore.md):

- `tasks/{task_id}`: the task's fields, its id included (lists order by the `id` field:
  the emulator refuses descending scans of document keys); its labels twice: `labels`,
  the exact map as JSON text, and `label_pairs`, one `["key","value"]` JSON string per
  label, for `array-contains` filters; its latest execution's summary (`latest`, a map),
  with that execution's status copied to `latest_status` for the status filter (Firestore
  has no joins).
- `executions/{execution_id}`: the execution's fields, its id included, and `event_count`,
  the number of events in its log.
- `executions/{execution_id}/events/{seq}`: one event per document, `seq` counted from 1 and
  zero-padded so that document ids sort in log order.

JSON values (payloads, results, errors, workers, labels) are stored as JSON text: Firestore
arrays cannot hold arrays, and text keeps every JSON value exactly as given, unindexed.
Times are Firestore timestamps (microsecond precision), read back as UTC-aware datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sublim.core.model import Event, Execution, ExecutionSummary, TaskRecord
from sublim.store._rows import (
    JSON_COLUMNS,
    SUMMARY_COLUMNS,
    TIME_COLUMNS,
    from_json_text,
    to_json_text,
)

Doc = dict[str, Any]

TASKS = "tasks"
EXECUTIONS = "executions"
EVENTS = "events"
#: Digits of an event document's id: logs up to 10**8 - 1 events sort correctly.
EVENT_ID_DIGITS = 8

#: The SQL stores' JSON columns but `depends_on`, an array here (for `array-contains`).
JSON_FIELDS = JSON_COLUMNS - {"depends_on"}
TIME_FIELDS = TIME_COLUMNS
SUMMARY_FIELDS = SUMMARY_COLUMNS


def plain_utc(moment: datetime | None) -> datetime | None:
    """A plain `datetime` in UTC (Firestore returns its own subclass; naive means UTC)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    utc = aware.astimezone(UTC)
    return datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=UTC)


def _to_field(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return to_json_text(value)
    if name in TIME_FIELDS:
        return plain_utc(value)
    return str(value) if name == "status" else value


def _from_field(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return from_json_text(value)
    if name in TIME_FIELDS:
        return plain_utc(value)
    return value


def _to_doc(data: Mapping[str, Any]) -> Doc:
    return {name: _to_field(name, value) for name, value in data.items()}


def _from_doc(doc: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: _from_field(name, doc.get(name)) for name in names}


def label_pair(key: str, value: str) -> str:
    """One label as the string `label_pairs` holds and `array-contains` looks for."""
    return json.dumps([key, value], ensure_ascii=False, separators=(",", ":"))


# Tasks


def summary_doc(summary: ExecutionSummary | None) -> Doc | None:
    return None if summary is None else _to_doc(summary.model_dump())


def latest_fields(summary: ExecutionSummary | None) -> Doc:
    """The task document's fields that hold its latest execution's summary."""
    status = None if summary is None else str(summary.status)
    return {"latest": summary_doc(summary), "latest_status": status}


def task_doc(task: TaskRecord) -> Doc:
    doc = _to_doc(task.model_dump(exclude={"latest_execution"}))
    pairs = [label_pair(key, value) for key, value in sorted(task.labels.items())]
    return doc | {"label_pairs": pairs} | latest_fields(task.latest_execution)


def task_patch_fields(task: TaskRecord) -> Doc:
    """The fields an update of the task's name, payload and labels writes."""
    doc = task_doc(task)
    return {name: doc[name] for name in ("name", "payload", "labels", "label_pairs", "updated_at")}


def summary_from_doc(doc: Mapping[str, Any] | None) -> ExecutionSummary | None:
    return None if doc is None else ExecutionSummary(**_from_doc(doc, SUMMARY_FIELDS))


def task_from_doc(task_id: str, doc: Mapping[str, Any]) -> TaskRecord:
    names = ("name", "topic", "payload", "labels", "created_at", "updated_at")
    latest = summary_from_doc(doc.get("latest"))
    return TaskRecord(id=task_id, **_from_doc(doc, names), latest_execution=latest)


# Executions and events

EXECUTION_FIELDS = tuple(name for name in Execution.model_fields if name not in {"id", "events"})


def execution_doc(execution: Execution, event_count: int) -> Doc:
    doc = _to_doc(execution.model_dump(exclude={"events"}))
    return doc | {"event_count": event_count}


def execution_from_doc(
    execution_id: str, doc: Mapping[str, Any], events: Iterable[Event] = ()
) -> Execution:
    fields = _from_doc(doc, EXECUTION_FIELDS)
    return Execution(id=execution_id, **fields, events=tuple(events))


def event_id(seq: int) -> str:
    return str(seq).zfill(EVENT_ID_DIGITS)


def event_doc(event: Event) -> Doc:
    return _to_doc(event.model_dump())


def event_from_doc(doc: Mapping[str, Any]) -> Event:
    return Event(**_from_doc(doc, ("status", "at", "attempt", "reason")))
