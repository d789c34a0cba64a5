"""/v1/executions: list, read, cancel and retry executions."""

from __future__ import annotations

from fastapi import APIRouter

from sublim.api.deps import ExecutionFiltersDep, ServiceDep, problems
from sublim.api.ids import ExecutionIdPath
from sublim.api.schemas import ExecutionList, ExecutionOut

router = APIRouter(prefix="/v1/executions", tags=["executions"])


@router.get("", response_model=ExecutionList, responses=problems(422, 503))
async def list_executions(service: ServiceDep, filters: ExecutionFiltersDep) -> ExecutionList:
    """Executions, newest first (without their event logs)."""
    return ExecutionList.of(await service.list_executions(filters.query()))


@router.get("/{execution_id}", response_model=ExecutionOut, responses=problems(404, 422, 503))
async def get_execution(execution_id: ExecutionIdPath, service: ServiceDep) -> ExecutionOut:
    """One execution, with its result, error and event log."""
    return ExecutionOut.of(await service.get_execution(execution_id))


@router.post(
    "/{execution_id}/cancel", response_model=ExecutionOut, responses=problems(404, 409, 422, 503)
)
async def cancel_execution(execution_id: ExecutionIdPath, service: ServiceDep) -> ExecutionOut:
    """Cancel an execution, queued or running; 409 once it has finished."""
    return ExecutionOut.of(await service.cancel(execution_id))


@router.post(
    "/{execution_id}/retry",
    status_code=202,
    response_model=ExecutionOut,
    responses=problems(404, 409, 422, 503),
)
async def retry_execution(execution_id: ExecutionIdPath, service: ServiceDep) -> ExecutionOut:
    """Enqueue a new execution of the same task; its first event reads `retry of ID`.
    409 while this execution has not finished."""
    return ExecutionOut.of(await service.retry(execution_id))
