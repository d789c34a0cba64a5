"""/v1/tasks: create, list, read, change and delete tasks; enqueue their executions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from sublim.api.deps import (
    Cursor,
    ExecutionFiltersDep,
    IdempotencyKey,
    Limit,
    ServiceDep,
    idempotent,
    problems,
)
from sublim.api.ids import TaskIdPath
from sublim.api.schemas import (
    CreatedTask,
    CreatedTasks,
    CreateTask,
    CreateTasks,
    EnqueueExecution,
    ExecutionList,
    ExecutionOut,
    PatchTask,
    TaskList,
    TaskOut,
)
from sublim.core.caps import MAX_LABEL_FILTERS
from sublim.core.model import Execution, TaskRecord, TaskStatus
from sublim.core.service import TaskSpec
from sublim.errors import InvalidInput
from sublim.store.base import TaskPatch, TaskQuery

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

LABEL_FILTER_PATTERN = r"^[^:]+:.*$"


def parse_labels(labels: list[str]) -> dict[str, str]:
    """`key:value` filters into a map; `InvalidInput` for one without a key."""
    parsed: dict[str, str] = {}
    for label in labels:
        key, colon, value = label.partition(":")
        if not key or not colon:
            raise InvalidInput(f"label filter {label!r} is not key:value")
        parsed[key] = value
    return parsed


@router.post(
    "", status_code=201, response_model=CreatedTask, responses=problems(400, 413, 422, 503)
)
async def create_task(
    body: CreateTask, request: Request, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Create a task; with `execute: true`, also enqueue its first execution."""

    async def produce() -> tuple[int, Any]:
        task, execution = await service.create_task(
            body.topic,
            body.payload,
            name=body.name,
            labels=body.labels,
            execute=body.execute,
            max_attempts=body.max_attempts,
        )
        return 201, _created(task, execution).model_dump_json().encode()

    return await idempotent(request, idempotency_key, body.model_dump_json, produce)


@router.post(
    ":batch",
    status_code=201,
    response_model=CreatedTasks,
    responses=problems(400, 413, 422, 503),
)
async def create_tasks(
    body: CreateTasks,
    request: Request,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create up to 1000 tasks in one call, each as `POST /v1/tasks` does; the answer lists
    them in the order given. Every task is checked first: if one is invalid (422) or its
    execution too large for the broker (413), the error names its index (`tasks[i]`) and
    no task is created."""

    async def produce() -> tuple[int, Any]:
        specs = [
            TaskSpec(t.topic, t.payload, t.name, t.labels, t.execute, t.max_attempts)
            for t in body.tasks
        ]
        created = await service.create_tasks(specs)
        items = [_created(task, execution) for task, execution in created]
        return 201, CreatedTasks(items=items).model_dump_json().encode()

    return await idempotent(request, idempotency_key, body.model_dump_json, produce)


def _created(task: TaskRecord, execution: Execution | None) -> CreatedTask:
    return CreatedTask.of_created(task, execution)


@router.get("", response_model=TaskList, responses=problems(422, 503))
async def list_tasks(
    service: ServiceDep,
    topic: str | None = None,
    label: Annotated[
        list[Annotated[str, Query(pattern=LABEL_FILTER_PATTERN)]],
        Query(
            description=f"key:value, repeatable (at most {MAX_LABEL_FILTERS})",
            json_schema_extra={"maxItems": MAX_LABEL_FILTERS},
        ),
    ] = [],  # noqa: B006
    status: Annotated[TaskStatus | None, Query(description="of the latest execution")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> TaskList:
    """Tasks, newest first, one page at a time."""
    query = TaskQuery(
        topic=topic, labels=parse_labels(label), status=status, limit=limit, cursor=cursor
    )
    return TaskList.of(await service.list_tasks(query))


@router.get("/{task_id}", response_model=TaskOut, responses=problems(404, 422, 503))
async def get_task(task_id: TaskIdPath, service: ServiceDep) -> TaskOut:
    return TaskOut.of(await service.get_task(task_id))


@router.patch("/{task_id}", response_model=TaskOut, responses=problems(400, 404, 413, 422, 503))
async def update_task(task_id: TaskIdPath, body: PatchTask, service: ServiceDep) -> TaskOut:
    """Change a task's name, payload or labels (the fields given)."""
    patch = TaskPatch(**body.model_dump(exclude_unset=True, exclude_none=True))
    return TaskOut.of(await service.update_task(task_id, patch))


@router.delete(
    "/{task_id}", status_code=204, response_class=Response, responses=problems(404, 422, 503)
)
async def delete_task(task_id: TaskIdPath, service: ServiceDep) -> Response:
    """Delete a task and its executions."""
    await service.delete_task(task_id)
    return Response(status_code=204)


@router.post(
    "/{task_id}/executions",
    status_code=202,
    response_model=ExecutionOut,
    responses=problems(400, 404, 413, 422, 503),
)
async def enqueue_execution(
    task_id: TaskIdPath,
    request: Request,
    service: ServiceDep,
    body: Annotated[EnqueueExecution | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Enqueue a new execution of the task."""
    options = body or EnqueueExecution()

    async def produce() -> tuple[int, Any]:
        execution = await service.enqueue(
            task_id, max_attempts=options.max_attempts, depends_on=options.depends_on
        )
        return 202, ExecutionOut.of(execution).model_dump_json().encode()

    def fingerprint() -> str:
        return task_id + options.model_dump_json()

    return await idempotent(request, idempotency_key, fingerprint, produce)


@router.get(
    "/{task_id}/executions", response_model=ExecutionList, responses=problems(404, 422, 503)
)
async def list_task_executions(
    task_id: TaskIdPath, service: ServiceDep, filters: ExecutionFiltersDep
) -> ExecutionList:
    """The task's executions, newest first (without their event logs)."""
    await service.get_task(task_id)
    return ExecutionList.of(await service.list_executions(filters.query(task_id)))
