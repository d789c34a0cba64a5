from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    INITIALIZED: _ClassVar[TaskStatus]
    ERROR: _ClassVar[TaskStatus]
    CANCELLED: _ClassVar[TaskStatus]
    READY_FOR_DISPATCH: _ClassVar[TaskStatus]
    DISPATCHED: _ClassVar[TaskStatus]
    RUNNING: _ClassVar[TaskStatus]
    PASSED: _ClassVar[TaskStatus]
    FAILED: _ClassVar[TaskStatus]
    KILLED: _ClassVar[TaskStatus]
    INCOMPLETE: _ClassVar[TaskStatus]
    BLOCKED: _ClassVar[TaskStatus]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    APPLIED: _ClassVar[Outcome]
    IGNORED: _ClassVar[Outcome]
    REFUSED: _ClassVar[Outcome]
TASK_STATUS_UNSPECIFIED: TaskStatus
INITIALIZED: TaskStatus
ERROR: TaskStatus
CANCELLED: TaskStatus
READY_FOR_DISPATCH: TaskStatus
DISPATCHED: TaskStatus
RUNNING: TaskStatus
PASSED: TaskStatus
FAILED: TaskStatus
KILLED: TaskStatus
INCOMPLETE: TaskStatus
BLOCKED: TaskStatus
OUTCOME_UNSPECIFIED: Outcome
APPLIED: Outcome
IGNORED: Outcome
REFUSED: Outcome

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class ErrorInfo(_message.Message):
    __slots__ = ("type", "message", "traceback")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    traceback: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("node", "host", "pid")
    NODE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    node: str
    host: str
    pid: int
    def __init__(self, node: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("status", "at_us", "attempt", "reason")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    status: TaskStatus
    at_us: int
    attempt: int
    reason: str
    def __init__(self, status: _Optional[_Union[TaskStatus, str]] = ..., at_us: _Optional[int] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ExecutionSummary(_message.Message):
    __slots__ = ("id", "status", "attempt", "created_at_us", "finished_at_us")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_US_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_US_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: TaskStatus
    attempt: int
    created_at_us: int
    finished_at_us: int
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., attempt: _Optional[int] = ..., created_at_us: _Optional[int] = ..., finished_at_us: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "name", "topic", "payload_json", "labels", "created_at_us", "updated_at_us", "latest_execution")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_US_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_US_FIELD_NUMBER: _ClassVar[int]
    LATEST_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    topic: str
    payload_json: bytes
    labels: _containers.ScalarMap[str, str]
    created_at_us: int
    updated_at_us: int
    latest_execution: ExecutionSummary
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., topic: _Optional[str] = ..., payload_json: _Optional[bytes] = ..., labels: _Optional[_Mapping[str, str]] = ..., created_at_us: _Optional[int] = ..., updated_at_us: _Optional[int] = ..., latest_execution: _Optional[_Union[ExecutionSummary, _Mapping]] = ...) -> None: ...

class TaskId(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Labels(_message.Message):
    __slots__ = ("labels",)
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LABELS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TaskPatch(_message.Message):
    __slots__ = ("name", "payload_json", "labels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    payload_json: bytes
    labels: Labels
    def __init__(self, name: _Optional[str] = ..., payload_json: _Optional[bytes] = ..., labels: _Optional[_Union[Labels, _Mapping]] = ...) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("task_id", "patch")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    patch: TaskPatch
    def __init__(self, task_id: _Optional[str] = ..., patch: _Optional[_Union[TaskPatch, _Mapping]] = ...) -> None: ...

class TaskQuery(_message.Message):
    __slots__ = ("topic", "labels", "status", "limit", "cursor")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    topic: str
    labels: _containers.ScalarMap[str, str]
    status: TaskStatus
    limit: int
    cursor: str
    def __init__(self, topic: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class Tasks(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, items: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class TaskPage(_message.Message):
    __slots__ = ("items", "next_cursor")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Task]
    next_cursor: str
    def __init__(self, items: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("id", "task_id", "topic", "status", "attempt", "max_attempts", "last_seq", "payload_json", "result_json", "error", "worker", "created_at_us", "dispatched_at_us", "started_at_us", "finished_at_us", "duration_seconds", "heartbeat_at_us", "events", "depends_on")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_US_FIELD_NUMBER: _ClassVar[int]
    DISPATCHED_AT_US_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_US_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_US_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AT_US_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    topic: str
    status: TaskStatus
    attempt: int
    max_attempts: int
    last_seq: int
    payload_json: bytes
    result_json: bytes
    error: ErrorInfo
    worker: WorkerInfo
    created_at_us: int
    dispatched_at_us: int
    started_at_us: int
    finished_at_us: int
    duration_seconds: float
    heartbeat_at_us: int
    events: _containers.RepeatedCompositeFieldContainer[Event]
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., topic: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., last_seq: _Optional[int] = ..., payload_json: _Optional[bytes] = ..., result_json: _Optional[bytes] = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ..., worker: _Optional[_Union[WorkerInfo, _Mapping]] = ..., created_at_us: _Optional[int] = ..., dispatched_at_us: _Optional[int] = ..., started_at_us: _Optional[int] = ..., finished_at_us: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., heartbeat_at_us: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., depends_on: _Optional[_Iterable[str]] = ...) -> None: ...

class Executions(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Execution]
    def __init__(self, items: _Optional[_Iterable[_Union[Execution, _Mapping]]] = ...) -> None: ...

class ExecutionId(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ExecutionIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExecutionQuery(_message.Message):
    __slots__ = ("task_id", "topic", "statuses", "created_after_us", "created_before_us", "heartbeat_before_us", "limit", "cursor", "waiting_on", "oldest_first")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_US_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_US_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_BEFORE_US_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    WAITING_ON_FIELD_NUMBER: _ClassVar[int]
    OLDEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    topic: str
    statuses: _containers.RepeatedScalarFieldContainer[TaskStatus]
    created_after_us: int
    created_before_us: int
    heartbeat_before_us: int
    limit: int
    cursor: str
    waiting_on: str
    oldest_first: bool
    def __init__(self, task_id: _Optional[str] = ..., topic: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[TaskStatus, str]]] = ..., created_after_us: _Optional[int] = ..., created_before_us: _Optional[int] = ..., heartbeat_before_us: _Optional[int] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ..., waiting_on: _Optional[str] = ..., oldest_first: _Optional[bool] = ...) -> None: ...

class ExecutionPage(_message.Message):
    __slots__ = ("items", "next_cursor")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Execution]
    next_cursor: str
    def __init__(self, items: _Optional[_Iterable[_Union[Execution, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class Update(_message.Message):
    __slots__ = ("execution_id", "task_id", "attempt", "seq", "status", "result_json", "error", "duration_seconds", "worker", "at_us", "started_at_us", "complete", "reason", "max_attempts", "claim")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    AT_US_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_US_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    task_id: str
    attempt: int
    seq: int
    status: TaskStatus
    result_json: bytes
    error: ErrorInfo
    duration_seconds: float
    worker: WorkerInfo
    at_us: int
    started_at_us: int
    complete: bool
    reason: str
    max_attempts: int
    claim: str
    def __init__(self, execution_id: _Optional[str] = ..., task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., seq: _Optional[int] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., result_json: _Optional[bytes] = ..., error: _Optional[_Union[ErrorInfo, _Mapping]] = ..., duration_seconds: _Optional[float] = ..., worker: _Optional[_Union[WorkerInfo, _Mapping]] = ..., at_us: _Optional[int] = ..., started_at_us: _Optional[int] = ..., complete: _Optional[bool] = ..., reason: _Optional[str] = ..., max_attempts: _Optional[int] = ..., claim: _Optional[str] = ...) -> None: ...

class ApplyUpdates(_message.Message):
    __slots__ = ("updates",)
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    updates: _containers.RepeatedCompositeFieldContainer[Update]
    def __init__(self, updates: _Optional[_Iterable[_Union[Update, _Mapping]]] = ...) -> None: ...

class MarkDispatched(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("by",)
    BY_FIELD_NUMBER: _ClassVar[int]
    by: str
    def __init__(self, by: _Optional[str] = ...) -> None: ...

class MarkLostIfSilent(_message.Message):
    __slots__ = ("cutoff_us",)
    CUTOFF_US_FIELD_NUMBER: _ClassVar[int]
    cutoff_us: int
    def __init__(self, cutoff_us: _Optional[int] = ...) -> None: ...

class ClaimUnpublished(_message.Message):
    __slots__ = ("now_us", "expired_before_us")
    NOW_US_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_BEFORE_US_FIELD_NUMBER: _ClassVar[int]
    now_us: int
    expired_before_us: int
    def __init__(self, now_us: _Optional[int] = ..., expired_before_us: _Optional[int] = ...) -> None: ...

class Unblock(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class CancelBlocked(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Modifier(_message.Message):
    __slots__ = ("apply_updates", "mark_dispatched", "cancel", "mark_lost_if_silent", "claim_unpublished", "unblock", "cancel_blocked")
    APPLY_UPDATES_FIELD_NUMBER: _ClassVar[int]
    MARK_DISPATCHED_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    MARK_LOST_IF_SILENT_FIELD_NUMBER: _ClassVar[int]
    CLAIM_UNPUBLISHED_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_FIELD_NUMBER: _ClassVar[int]
    CANCEL_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    apply_updates: ApplyUpdates
    mark_dispatched: MarkDispatched
    cancel: Cancel
    mark_lost_if_silent: MarkLostIfSilent
    claim_unpublished: ClaimUnpublished
    unblock: Unblock
    cancel_blocked: CancelBlocked
    def __init__(self, apply_updates: _Optional[_Union[ApplyUpdates, _Mapping]] = ..., mark_dispatched: _Optional[_Union[MarkDispatched, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., mark_lost_if_silent: _Optional[_Union[MarkLostIfSilent, _Mapping]] = ..., claim_unpublished: _Optional[_Union[ClaimUnpublished, _Mapping]] = ..., unblock: _Optional[_Union[Unblock, _Mapping]] = ..., cancel_blocked: _Optional[_Union[CancelBlocked, _Mapping]] = ...) -> None: ...

class ModifyRequest(_message.Message):
    __slots__ = ("ids", "modifier")
    IDS_FIELD_NUMBER: _ClassVar[int]
    MODIFIER_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    modifier: Modifier
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., modifier: _Optional[_Union[Modifier, _Mapping]] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("outcome", "execution", "new_events", "reason")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    NEW_EVENTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    execution: Execution
    new_events: _containers.RepeatedCompositeFieldContainer[Event]
    reason: str
    def __init__(self, outcome: _Optional[_Union[Outcome, str]] = ..., execution: _Optional[_Union[Execution, _Mapping]] = ..., new_events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class Changes(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Change]
    def __init__(self, items: _Optional[_Iterable[_Union[Change, _Mapping]]] = ...) -> None: ...

class WriteStep(_message.Message):
    __slots__ = ("expected", "change")
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    expected: Execution
    change: Change
    def __init__(self, expected: _Optional[_Union[Execution, _Mapping]] = ..., change: _Optional[_Union[Change, _Mapping]] = ...) -> None: ...

class CompareAndWriteRequest(_message.Message):
    __slots__ = ("ids", "steps")
    IDS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedCompositeFieldContainer[WriteStep]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[_Union[WriteStep, _Mapping]]] = ...) -> None: ...

class StatusCount(_message.Message):
    __slots__ = ("status", "count")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    status: TaskStatus
    count: int
    def __init__(self, status: _Optional[_Union[TaskStatus, str]] = ..., count: _Optional[int] = ...) -> None: ...

class StoreStats(_message.Message):
    __slots__ = ("tasks", "executions")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    tasks: int
    executions: _containers.RepeatedCompositeFieldContainer[StatusCount]
    def __init__(self, tasks: _Optional[int] = ..., executions: _Optional[_Iterable[_Union[StatusCount, _Mapping]]] = ...) -> None: ...
