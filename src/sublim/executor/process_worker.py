"""The child side of the process pool: a loop that receives a pickled task, runs it and sends
back its pickled `Outcome`, one task at a time, until told to stop.

Wire protocol over a duplex `Connection` (length-prefixed byte messages):
  child → parent  READY once started, then one pickled `Outcome` per request;
  parent → child  a pickled `Task` per request, or STOP.
Exceptions travel as `ErrorInfo` strings, never as objects, so an unpicklable exception cannot
break the channel; an unpicklable return value becomes an error `Outcome` here, in the child.
"""

from __future__ import annotations

import pickle
import signal
import time
from multiprocessing.connection import Connection

from sublim.executor.outcome import (
    TASK_ERRORS,
    Outcome,
    described_error,
    elapsed_since,
    run_captured,
)

READY = b"ready"
STOP = b""


def worker_main(conn: Connection) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send_bytes(READY)
    while (request := _next_request(conn)) is not None:
        conn.send_bytes(answer(request))


def _next_request(conn: Connection) -> bytes | None:
    try:
        request = conn.recv_bytes()
    except EOFError:  # the parent is gone
        return None
    return None if request == STOP else request


def answer(request: bytes) -> bytes:
    """The pickled `Outcome` of running the pickled task `request`."""
    return _pickled(_outcome_of(request))


def _outcome_of(request: bytes) -> Outcome:
    started = time.perf_counter()
    try:
        task = pickle.loads(request)
    except TASK_ERRORS as exc:
        error = described_error(exc, "the task could not be unpickled in the worker process")
        return Outcome.failure(error, elapsed_since(started))
    return run_captured(task)


def _pickled(outcome: Outcome) -> bytes:
    try:
        return pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        error = described_error(exc, "the task's return value could not be pickled")
        failure = Outcome.failure(error, outcome.duration_seconds)
        return pickle.dumps(failure, protocol=pickle.HIGHEST_PROTOCOL)
