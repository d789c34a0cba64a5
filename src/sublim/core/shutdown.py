"""How a long-running process learns to stop: SIGTERM or SIGINT sets an event.

Used by every command that serves (`sublim up`, `api`, `executor`, `datastore`) and by
`ExecutionNode.run`, so that each stops the same way.
"""

from __future__ import annotations

import asyncio
import signal


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call inside the running event loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
