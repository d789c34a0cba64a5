"""The child side of the process pool: a loop that receives a pickled task, runs it and sends
back its pickled `Outcome`, one task at a time, until told to stop.

Wire protocol over a duplex `Connection` (length-prefixed byte messages):
  child → parent  READY once started, then one pickled `Outcome` per request;
  parent → child  a pickled `Task` per request, or STOP.
Exceptions travel as `ErrorInfo` strings, never as objects, so an unpicklable exception cannot
break the channel; an unpicklable return value becomes an error `Outcome` here, in the child.

A worker never outlives its executor: a task left running by an executor that was killed
would run beside its redelivery on another node. The parent never writes while a request is
outstanding, so the pipe turning readable then is the end of file of a dead executor: the
worker checks it before it runs a request, and a thread watches it while the task runs, and
the worker exits at once (a forkserver child cannot rely on the death of its parent process:
the forkserver outlives the executor while any of its children does).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
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
#: The exit code of a worker that found its executor gone.
ORPHANED = 70
#: How often the watching thread looks again at which request runs (the end of file itself
#: wakes it at once).
WATCH_SECONDS = 1.0


def worker_main(conn: Connection) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch = ParentWatch(conn)
    conn.send_bytes(READY)
    while (request := _next_request(conn)) is not None:
        with watch.running():
            reply = answer(request)
        conn.send_bytes(reply)


class ParentWatch:
    """Exits this worker as soon as the executor's end of the pipe closes while a request is
    outstanding (before it runs, or during its run)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._running = threading.Event()
        self._generation = 0  # one more at each start and end of a run
        threading.Thread(target=self._watch, name="sublim-parent-watch", daemon=True).start()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        if self._conn.poll(0):
            os._exit(ORPHANED)
        self._generation += 1
        self._running.set()
        try:
            yield
        finally:
            self._running.clear()
            self._generation += 1

    def _watch(self) -> None:
        while True:
            self._running.wait()
            generation = self._generation
            readable = self._conn.poll(WATCH_SECONDS)
            if readable and self._running.is_set() and generation == self._generation:
                os._exit(ORPHANED)


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
