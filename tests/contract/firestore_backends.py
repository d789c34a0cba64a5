"""The Firestore store as contract-suite factories, on the emulator: each test gets a project
of its own (fresh, empty state), whose documents are deleted afterwards."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sublim.store.base import Store
from sublim.store.remote import RemoteStore
from tests.datastore_process import DatastoreProcess, remote_store
from tests.gcp_emulators import fresh_firestore_project, reset_firestore, unique_project


@asynccontextmanager
async def firestore_store(tmp_path: Path) -> AsyncIterator[Store]:
    from sublim.store.firestore import FirestoreStore

    project = fresh_firestore_project()
    store = FirestoreStore.from_url(f"firestore://{project}")
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        reset_firestore(project)


class FirestoreDatastore(DatastoreProcess):
    """`sublim datastore --store firestore://PROJECT` (the original's topology)."""

    def __init__(self, directory: Path, project: str) -> None:
        super().__init__(directory)
        self.project = project

    @property
    def store_url(self) -> str:
        return f"firestore://{self.project}"


# Starting a process takes about a second: one is always starting while a test runs.
_spares: list[FirestoreDatastore] = []


def _started() -> FirestoreDatastore:
    directory = Path(tempfile.mkdtemp(prefix="sublim-fs-datastore-"))
    datastore = FirestoreDatastore(directory, unique_project())
    datastore.start()
    return datastore


def _take() -> FirestoreDatastore:
    datastore = _spares.pop() if _spares else _started()
    _spares.append(_started())
    datastore.wait_ready()
    return datastore


@asynccontextmanager
async def grpc_firestore_store(tmp_path: Path) -> AsyncIterator[RemoteStore]:
    """A `grpc://` store served by a fresh `sublim datastore` process over Firestore."""
    fresh_firestore_project()  # the emulator runs, and the child inherits its address
    datastore = _take()
    try:
        async with remote_store(datastore.url) as store:
            yield store
    finally:
        datastore.stop()
        reset_firestore(datastore.project)
        shutil.rmtree(datastore.directory, ignore_errors=True)


def stop_spares() -> None:
    for datastore in _spares:
        datastore.stop()
        shutil.rmtree(datastore.directory, ignore_errors=True)


atexit.register(stop_spares)
