"""Wake-ups across the processes of one machine that share a broker database file.

Each broker that waits binds a Unix datagram socket in a directory next to the database
(`<dbfile>.wake/`). After committing, a publisher sends each socket one datagram naming the
subscriptions that received messages; the waiting broker's event loop reads it and wakes the
pullers of those subscriptions. Sends never block: a full socket already has a wake-up pending,
and a socket whose owner is gone is removed. Where Unix datagram sockets are unavailable
(Windows), `listen` answers False and the broker falls back to polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

#: Called with the subscriptions named by the datagrams read, or None for "all of them".
OnWake = Callable[[list[str] | None], None]

#: Longest socket path that fits `sockaddr_un` on every Unix (104 on macOS, 108 on Linux).
_MAX_ADDRESS = 100
#: A longer list of subscriptions is sent as an empty datagram, which wakes everyone.
_MAX_PAYLOAD = 1024
_PROC_FD = Path("/proc/self/fd")


def _payload(subscriptions: Sequence[str]) -> bytes:
    payload = "\n".join(subscriptions).encode()
    return payload if len(payload) <= _MAX_PAYLOAD else b""


class WakeChannel:
    """This process's end of the wake-up directory of one database file."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._receiver: socket.socket | None = None
        self._receiver_name: str | None = None
        self._sender: socket.socket | None = None
        self._directory_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unavailable = not hasattr(socket, "AF_UNIX")

    def listen(self, on_wake: OnWake) -> bool:
        """Start receiving wake-ups in the running event loop; False where unsupported."""
        if self._unavailable:
            return False
        try:
            self._bind()
            self._watch(on_wake)
        except (OSError, NotImplementedError):
            self._unavailable = True
            self.close()
            return False
        return True

    def _bind(self) -> None:
        if self._receiver is not None:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.setblocking(False)
        self._receiver, self._receiver_name = receiver, name
        receiver.bind(self._address(name))

    def _watch(self, on_wake: OnWake) -> None:
        """Read the socket in the running loop (again, when the broker moved to a new loop)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop or self._receiver is None:
            return
        self._unwatch()
        loop.add_reader(self._receiver.fileno(), self._drain, on_wake)
        self._loop = loop

    def _unwatch(self) -> None:
        if self._loop is not None and self._receiver is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._receiver.fileno())
        self._loop = None

    def _drain(self, on_wake: OnWake) -> None:
        woken: set[str] = set()
        everyone = False
        for datagram in self._pending_datagrams():
            woken.update(datagram.decode(errors="replace").split("\n"))
            everyone = everyone or not datagram
        on_wake(None if everyone else sorted(woken))

    def _pending_datagrams(self) -> list[bytes]:
        datagrams: list[bytes] = []
        while self._receiver is not None:
            try:
                datagrams.append(self._receiver.recv(_MAX_PAYLOAD + 1))
            except OSError:  # BlockingIOError once drained
                break
        return datagrams

    def send(self, subscriptions: Sequence[str]) -> None:
        """Wake the other waiting brokers of this file; blocking-free, errors ignored."""
        if self._unavailable or not subscriptions:
            return
        try:
            names = os.listdir(self._directory)
        except OSError:  # no broker has ever waited on this file
            return
        payload = _payload(subscriptions)
        for name in names:
            if name != self._receiver_name:
                self._send_one(name, payload)

    def _send_one(self, name: str, payload: bytes) -> None:
        try:
            self._sending_socket().sendto(payload, self._address(name))
        except (ConnectionRefusedError, FileNotFoundError):
            # Nobody is bound to it any more: its process is gone.
            with contextlib.suppress(OSError):
                (self._directory / name).unlink()
        except OSError:
            pass  # EAGAIN: the receiver's buffer is full, so a wake-up is pending already

    def _sending_socket(self) -> socket.socket:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        return self._sender

    def _address(self, name: str) -> str:
        """The socket's path, shortened through /proc on Linux when it is too long to bind."""
        path = str(self._directory / name)
        if len(path.encode()) <= _MAX_ADDRESS or not _PROC_FD.is_dir():
            return path
        if self._directory_fd is None:
            self._directory_fd = os.open(self._directory, os.O_RDONLY)
        return f"{_PROC_FD}/{self._directory_fd}/{name}"

    def close(self) -> None:
        self._unwatch()
        self._close_receiver()
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._directory_fd is not None:
            os.close(self._directory_fd)
            self._directory_fd = None

    def _close_receiver(self) -> None:
        if self._receiver is None:
            return
        self._receiver.close()
        with contextlib.suppress(OSError):
            (self._directory / str(self._receiver_name)).unlink()
        self._receiver, self._receiver_name = None, None
