"""One attempt: from a delivered request message to its reported outcome and its ack."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from sublim.broker.base import Broker, Delivery
from sublim.core.ids import new_ulid
from sublim.core.messages import decode_request
from sublim.core.model import ErrorInfo, ExecutionRequest, TaskStatus, Update, WorkerInfo, utcnow
from sublim.core.policy import (
    Failure,
    RetryPolicy,
    Verdict,
    attempt_number,
    attempts_allowed,
    out_of_attempts,
    verdict_for_failure,
    verdict_for_value,
)
from sublim.core.task import Task
from sublim.errors import BrokerError, InvalidInput
from sublim.executor.control import Control
from sublim.executor.heartbeat import Heartbeat
from sublim.executor.pools import Outcome, Pool
from sublim.executor.reporter import Reporter

log = logging.getLogger("sublim.executor")

S = TaskStatus

#: A claim still unanswered after this many heartbeats is logged and sent again.
CLAIM_RESEND_EVERY = 6

#: How long an attempt's first Running report waits before it is published (never longer than
#: half a heartbeat): an attempt that ends sooner has it published in one batch with its
#: outcome, one broker call instead of two (docs/decisions/034-cheaper-attempts.md).
RUNNING_REPORT_HOLD_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Consumer:
    """A task type consumed from one subscription."""

    task_type: type[Task]
    subscription: str


@dataclass(frozen=True, slots=True)
class AttemptContext:
    """What every attempt of a node shares."""

    broker: Broker
    reporter: Reporter
    worker: WorkerInfo
    lease_seconds: float
    heartbeat_seconds: float
    control: Control

    @property
    def claims_attempts(self) -> bool:
        """On a broker that cannot dedupe a request published twice, an attempt runs only
        once the recorder granted its claim (docs/decisions/019-one-attempt-at-a-time.md)."""
        return not self.broker.dedupes_publish


class Attempt:
    """Runs one delivery of an execution request on a pool and reports what happened."""

    def __init__(self, ctx: AttemptContext, consumer: Consumer, delivery: Delivery) -> None:
        self.ctx = ctx
        self.consumer = consumer
        self.delivery = delivery
        self._seq = itertools.count(1)
        self._started_at: datetime | None = None
        self.request: ExecutionRequest | None = None
        self.number = 0
        self._cancelled_by: str | None = None
        self._cancel_flag = threading.Event()
        self._pool_run: asyncio.Future[Outcome] | None = None
        #: True once this delivery holds the attempt (announced, and granted where claimed):
        #: only then may it report for the execution.
        self._holds_attempt = False
        #: The first Running update while it waits to be published, and its timer.
        self._held_running: Update | None = None
        self._hold_timer: asyncio.TimerHandle | None = None

    async def run(self, pool: Pool) -> None:
        request = self._decode()
        if request is None:
            await self._ack()
            return
        self.request = request
        self.number = attempt_number(request.attempt, self.delivery.deliveries)
        if (past_the_last := out_of_attempts(self.number, self.max_attempts)) is not None:
            await self._finish(past_the_last)
            return
        task = self._validate(request)
        if isinstance(task, Verdict):
            await self._finish(task)
        elif by := self.ctx.control.cancelled_by(request.execution_id):
            await self._finish(Verdict(S.CANCELLED, reason=f"cancelled by {by} before it started"))
        elif self.ctx.control.is_running(request.execution_id):
            # A second copy of a request this node is running (an outbox published it twice):
            # the running attempt reports for the execution; this copy is dropped.
            log.warning(
                "dropping a duplicate delivery of running execution %s", request.execution_id
            )
            await self._ack()
        else:
            await self._execute(pool, task)

    @property
    def max_attempts(self) -> int:
        """The task type's own max_attempts, else the one the request was enqueued with."""
        assert self.request is not None
        return attempts_allowed(self.consumer.task_type.max_attempts, self.request.max_attempts)

    async def release(self, reason: str) -> None:
        """Give the delivery back (shutdown): the attempt is Incomplete and redelivered. A
        copy whose claim was not granted yet reports nothing: the attempt may be another's."""
        if self.request is None:
            return
        if self._holds_attempt:
            await self._report(Verdict(S.INCOMPLETE, reason=reason))
        await self.ctx.broker.nack(self.consumer.subscription, [self.delivery.receipt])

    def _decode(self) -> ExecutionRequest | None:
        try:
            return decode_request(self.delivery.data)
        except InvalidInput as exc:
            log.error(
                "acking undecodable request %s on %s: %s",
                self.delivery.message_id,
                self.consumer.subscription,
                exc,
            )
            return None

    def _validate(self, request: ExecutionRequest) -> Task | Verdict:
        """The task, or an Error verdict: a payload that does not decode is never retried."""
        try:
            return self.consumer.task_type.model_validate(request.payload)
        except ValidationError as exc:
            error = ErrorInfo(type="InvalidPayload", message=str(exc))
            reason = f"payload does not decode into {self.consumer.task_type.__name__}"
            return Verdict(S.ERROR, error=error, reason=reason)

    def cancel(self, by: str, *, grace: float) -> None:
        """Stop this attempt: at once on the async pool (an asyncio cancel), after `grace`
        seconds elsewhere, during which the task sees `self.cancelled()` and may return."""
        self._cancelled_by = by
        self._cancel_flag.set()
        pool_run = self._pool_run
        if pool_run is not None:
            delay = 0.0 if self.consumer.task_type.pool_kind() == "async" else grace
            asyncio.get_running_loop().call_later(delay, pool_run.cancel)

    async def _execute(self, pool: Pool, task: Task) -> None:
        assert self.request is not None
        execution_id = self.request.execution_id
        self._started_at = utcnow()
        self.ctx.control.running(execution_id, self)
        try:
            if await self._announce():
                await self._run_on(pool, task)
        finally:
            self.ctx.control.finished(execution_id)

    async def _announce(self) -> bool:
        """Report Running. Where attempts are claimed, wait for the answer first: a denied
        claim is a second copy of a request another node runs (or of a finished execution),
        acked unrun. Returns whether this delivery now holds the attempt."""
        if not self.ctx.claims_attempts:
            self._hold_running(self._update(S.RUNNING))
            self._holds_attempt = True
            return True
        token = new_ulid()
        answer = self.ctx.control.await_claim(token)
        claim = self._update(S.RUNNING, claim=token)
        self.ctx.reporter.send(claim)
        self._holds_attempt = await self._keeping_the_lease(answer, claim)
        if not self._holds_attempt:
            log.warning("dropping a copy of %s attempt %d: not granted", *self._named())
            await self._ack()
        return self._holds_attempt

    async def _keeping_the_lease(self, answer: asyncio.Future[bool], claim: Update) -> bool:
        """Wait for the claim's answer, extending the delivery's lease meanwhile (an API that
        is down answers when it is back); no heartbeat is reported before the grant. A claim
        long unanswered is sent again: recorded again, it gets the same answer."""
        beats = 0
        while True:
            done, _ = await asyncio.wait({answer}, timeout=self.ctx.heartbeat_seconds)
            if done:
                return answer.result()
            await self._extend_lease()
            beats += 1
            if beats % CLAIM_RESEND_EVERY == 0:
                log.warning(
                    "%s attempt %d still waits for its claim (is an API recording updates?)",
                    *self._named(),
                )
                self.ctx.reporter.send(claim)

    def _hold_running(self, update: Update) -> None:
        """Publish the Running update a little later (see `RUNNING_REPORT_HOLD_SECONDS`), or
        with the attempt's next update, whichever comes first. Its time stays the start's."""
        self._held_running = update
        hold = min(RUNNING_REPORT_HOLD_SECONDS, self.ctx.heartbeat_seconds / 2)
        self._hold_timer = asyncio.get_running_loop().call_later(hold, self._send_held_running)

    def _send_held_running(self) -> None:
        """Queue the held Running update (if any) for publishing: before any later update of
        the attempt, which the reporter then publishes in the same batch or after it."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        held, self._held_running = self._held_running, None
        if held is not None:
            self.ctx.reporter.send(held)

    def _named(self) -> tuple[str, int]:
        assert self.request is not None
        return self.request.execution_id, self.number

    async def _run_on(self, pool: Pool, task: Task) -> None:
        if self._cancelled_by is not None:  # cancelled while its claim was answered
            await self._finish(self._final_verdict(None))
            return
        name = "heartbeat of {} attempt {}".format(*self._named())
        heartbeat = Heartbeat(self.ctx.heartbeat_seconds, self._beat, name)
        task._cancel_requested = self._cancel_flag
        self._pool_run = asyncio.ensure_future(pool.run(task, time_limit=type(task).time_limit))
        try:
            outcome: Outcome | None = await self._pool_run
        except asyncio.CancelledError:
            if self._cancelled_by is None or _cancelled_from_outside():
                raise
            outcome = None
        finally:
            await heartbeat.stop()  # at once: no beat after the outcome
        duration = outcome.duration_seconds if outcome is not None else None
        await self._finish(self._final_verdict(outcome), duration)

    def _final_verdict(self, outcome: Outcome | None) -> Verdict:
        if self._cancelled_by is not None:
            return Verdict(S.CANCELLED, reason=f"cancelled by {self._cancelled_by} while running")
        assert outcome is not None
        return self._verdict(outcome)

    def _verdict(self, outcome: Outcome) -> Verdict:
        if outcome.error is None:
            return verdict_for_value(outcome.value)
        failure = Failure(
            outcome.error,
            crashed=outcome.crashed,
            timed_out=outcome.timed_out,
            retry_in=outcome.retry_in,
            give_up=outcome.give_up,
        )
        policy = RetryPolicy.of(self.consumer.task_type, self.max_attempts)
        return verdict_for_failure(failure, attempt=self.number, policy=policy)

    async def _finish(self, verdict: Verdict, duration: float | None = None) -> None:
        """Report the outcome, then ack the delivery (in the same batch of the reporter), or
        nack it for a retry later."""
        update = self._outcome(verdict, duration)
        if verdict.retry_in is None:
            await self.ctx.reporter.send_and_ack(
                update, self.consumer.subscription, self.delivery.receipt
            )
            return
        await self.ctx.reporter.send(update)
        await self.ctx.broker.nack(
            self.consumer.subscription, [self.delivery.receipt], delay=verdict.retry_in
        )

    async def _report(self, verdict: Verdict) -> None:
        await self.ctx.reporter.send(self._outcome(verdict))

    def _outcome(self, verdict: Verdict, duration: float | None = None) -> Update:
        """The attempt's last update, queued after its held Running update if any."""
        self._send_held_running()
        return self._update(
            verdict.status,
            result=verdict.data,
            error=verdict.error,
            duration=duration,
            complete=True,
            reason=verdict.reason,
        )

    async def _ack(self) -> None:
        await self.ctx.reporter.ack(self.consumer.subscription, self.delivery.receipt)

    async def _beat(self) -> None:
        """Every `heartbeat_seconds` while the attempt runs: extend the delivery's lease and
        report the attempt Running."""
        self._send_held_running()
        await self._extend_lease()
        self.ctx.reporter.send(self._update(S.RUNNING))

    async def _extend_lease(self) -> None:
        """Extend the delivery's lease. A broker that cannot be reached is tried again at the
        next beat: the lease outlives a few missed beats, whereas ending the heartbeat would
        let it pass under this live attempt and the request run twice at once."""
        try:
            lost = await self.ctx.broker.extend(
                self.consumer.subscription, [self.delivery.receipt], lease=self.ctx.lease_seconds
            )
        except BrokerError as exc:
            log.warning("lease of %s not extended (%s)", self.delivery.message_id, exc)
            return
        if lost:
            log.warning("lease of %s lost: another consumer may run it", self.delivery.message_id)

    def _update(self, status: TaskStatus, **fields: Any) -> Update:
        assert self.request is not None
        return Update(
            execution_id=self.request.execution_id,
            task_id=self.request.task_id,
            attempt=self.number,
            seq=next(self._seq),
            status=status,
            result=fields.get("result"),
            error=fields.get("error"),
            duration_seconds=fields.get("duration"),
            worker=self.ctx.worker,
            started_at=self._started_at,
            complete=fields.get("complete", False),
            reason=fields.get("reason"),
            max_attempts=self.consumer.task_type.max_attempts,
            claim=fields.get("claim"),
        )


def _cancelled_from_outside() -> bool:
    """True when the attempt's own task is being cancelled (the node shuts down)."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
