"""The API's request and response bodies (the shapes of DESIGN §6).

Response models are read from the core's models by attribute (`from_attributes`), not
through a dump of them: one validation pass per response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sublim.api.ids import Ulid
from sublim.broker.base import check_name
from sublim.core.caps import MAX_DEPENDS_ON, MAX_LABELS_PER_TASK
from sublim.core.model import (
    ErrorInfo,
    Event,
    Execution,
    ExecutionSummary,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from sublim.core.service import MAX_TASKS_PER_CALL
from sublim.errors import InvalidInput
from sublim.store.base import Page

MAX_ATTEMPTS_LIMIT = 100


def _valid_topic(topic: str) -> str:
    try:
        return check_name("topic", topic)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from exc


#: The broker's rule for topic names (`check_name`), declared so that clients see it.
TOPIC_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{0,199}$"
Topic = Annotated[
    str, Field(pattern=TOPIC_PATTERN, examples=["Thumbnail"]), AfterValidator(_valid_topic)
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
LabelKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^:]+$")]
LabelValue = Annotated[str, Field(max_length=500)]
#: Keys are checked by pattern (patternProperties): declare that no other key is allowed,
#: so that the document says what the server enforces (a key with ':' is refused). The count
#: is the core's cap (`sublim.core.caps`), declared here, checked there with a message naming it.
Labels = Annotated[
    dict[LabelKey, LabelValue],
    Field(json_schema_extra={"additionalProperties": False, "maxProperties": MAX_LABELS_PER_TASK}),
]
Payload = dict[str, Any]
MaxAttempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)]


class Body(BaseModel):
    """A request body: unknown fields are errors, so that a typo does not go unnoticed."""

    model_config = ConfigDict(extra="forbid")


class CreateTask(Body):
    name: Name | None = None
    topic: Topic
    payload: Payload = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)
    execute: bool = False
    max_attempts: MaxAttempts | None = None


class CreateTasks(Body):
    """`POST /v1/tasks:batch`: up to `MAX_TASKS_PER_CALL` tasks, each as `POST /v1/tasks`
    takes it."""

    tasks: list[CreateTask] = Field(min_length=1, max_length=MAX_TASKS_PER_CALL)


class PatchTask(Body):
    name: Name | None = None
    payload: Payload | None = None
    labels: Labels | None = None


class EnqueueExecution(Body):
    max_attempts: MaxAttempts | None = None
    #: Executions that must pass first: until then this one waits Blocked; if one of them
    #: ends otherwise, this one ends Cancelled.
    depends_on: list[Ulid] = Field(default_factory=list, max_length=MAX_DEPENDS_ON)


class EventOut(BaseModel):
    status: TaskStatus
    at: datetime
    attempt: int
    reason: str | None

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(status=event.status, at=event.at, attempt=event.attempt, reason=event.reason)


class ExecutionOut(BaseModel):
    """An execution; lists leave `events` empty, `GET /v1/executions/{id}` fills it."""

    id: str
    task_id: str
    topic: str
    status: TaskStatus
    attempt: int
    max_attempts: int
    result: Any = None
    error: ErrorInfo | None
    worker: WorkerInfo | None
    created_at: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    depends_on: list[str] = Field(default_factory=list)
    events: list[EventOut]

    @classmethod
    def of(cls, execution: Execution) -> ExecutionOut:
        return cls.model_validate(execution, from_attributes=True)


class ExecutionSummaryOut(BaseModel):
    id: str
    status: TaskStatus
    attempt: int
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, summary: ExecutionSummary | None) -> ExecutionSummaryOut | None:
        return None if summary is None else cls(**summary.model_dump())


class TaskOut(BaseModel):
    id: str
    name: str
    topic: str
    payload: Payload
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    latest_execution: ExecutionSummaryOut | None

    @classmethod
    def of(cls, task: TaskRecord) -> TaskOut:
        return cls.model_validate(task, from_attributes=True)


class CreatedTask(TaskOut):
    """A new task; with `execute: true`, also the execution that was enqueued."""

    execution: ExecutionOut | None = None

    @classmethod
    def of_created(cls, task: TaskRecord, execution: Execution | None) -> CreatedTask:
        return cls.model_validate({**dict(task), "execution": execution}, from_attributes=True)


class CreatedTasks(BaseModel):
    """The tasks of `POST /v1/tasks:batch`, in the order of the request."""

    items: list[CreatedTask]


class TaskList(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[TaskRecord]) -> TaskList:
        return cls(items=[TaskOut.of(t) for t in page.items], next_cursor=page.next_cursor)


class ExecutionList(BaseModel):
    items: list[ExecutionOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[Execution]) -> ExecutionList:
        return cls(items=[ExecutionOut.of(e) for e in page.items], next_cursor=page.next_cursor)


class UpdateReceipt(BaseModel):
    """What the push route did with an update: applied, ignored (stale or duplicate),
    refused (illegal), or unknown (no such execution)."""

    execution_id: str
    outcome: str


class Problem(BaseModel):
    """An error, as RFC 9457 `application/problem+json`."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None
    #: On a 413 for a message too large for the broker: the broker's limit.
    limit_bytes: int | None = None


class Health(BaseModel):
    status: str
