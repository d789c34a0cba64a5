"""The import rules between the layers of `src/sublim` hold, checked over the source's `ast`
(lazy imports inside functions and `TYPE_CHECKING` imports count too), and
docs/architecture.md names every module with its layer.

The layers, lowest first; a module may import its own layer's core or plumbing, any lower
layer, and, among backends and adapters, only its own unit:

- core: domain, use cases, settings, errors and the two protocols (`store/base`, `broker/base`);
- plumbing: what several backends (or a backend and an adapter) share: engine connections,
  row helpers, the Pub/Sub layout, the datastore's wire format;
- backend: one store or broker engine per unit, loaded by `core/backends.py` from a string;
- adapter: the HTTP API, the datastore server, the executor, the client, GCP provisioning;
- entry: the public facade `sublim`, the CLI, the test harness and the bundled example.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

CORE = (
    "sublim.config",
    "sublim.errors",
    "sublim.core",
    "sublim.core.backends",
    "sublim.core.batching",
    "sublim.core.caps",
    "sublim.core.feed",
    "sublim.core.holds",
    "sublim.core.ids",
    "sublim.core.loops",
    "sublim.core.messages",
    "sublim.core.model",
    "sublim.core.modifiers",
    "sublim.core.policy",
    "sublim.core.redaction",
    "sublim.core.runner",
    "sublim.core.service",
    "sublim.core.shutdown",
    "sublim.core.task",
    "sublim.store",
    "sublim.store.base",
    "sublim.broker",
    "sublim.broker.base",
)
PLUMBING = (
    "sublim.engines",
    "sublim.engines.postgres",
    "sublim.engines.pubsub",
    "sublim.engines.sqlite",
    "sublim.engines.sqlite_wake",
    "sublim.store._common",
    "sublim.store._rows",
    "sublim.store._sql",
    "sublim.broker._base",
    "sublim.broker._leases",
    "sublim.broker._shared",
    "sublim.datastore",
    "sublim.datastore.auth",
    "sublim.datastore.codec",
    "sublim.datastore.datastore_pb2",
    "sublim.datastore.datastore_pb2_grpc",
    "sublim.datastore.wire_errors",
)
#: Unit → its modules: a backend imports no other backend (`core/backends.py` names them).
BACKENDS = {
    "store memory": ("sublim.store.memory",),
    "store sqlite": ("sublim.store.sqlite", "sublim.store._sqlite_rows"),
    "store postgres": ("sublim.store.postgres", "sublim.store._postgres_rows"),
    "store firestore": (
        "sublim.store.firestore",
        "sublim.store._firestore_docs",
        "sublim.store._firestore_queries",
    ),
    "store remote": ("sublim.store.remote",),
    "broker memory": ("sublim.broker.memory",),
    "broker sqlite": ("sublim.broker.sqlite",),
    "broker postgres": ("sublim.broker.postgres",),
    "broker redis": ("sublim.broker.redis", "sublim.broker._redis_lua"),
    "broker amqp": ("sublim.broker.amqp", "sublim.broker._amqp_layout"),
    "broker nats": ("sublim.broker.nats",),
    "broker pubsub": ("sublim.broker.pubsub",),
}
#: Unit → its modules ("pkg.*": the package and everything in it).
ADAPTERS = {
    "api": ("sublim.api.*",),
    "datastore server": ("sublim.datastore.server", "sublim.datastore.inbound"),
    "executor": ("sublim.executor.*",),
    "client": ("sublim.client.*",),
    "gcp provisioning": ("sublim.gcp.*",),
}
ENTRY = ("sublim", "sublim.cli.*", "sublim.testing", "sublim.examples.*")

RANK = {"core": 0, "plumbing": 1, "backend": 2, "adapter": 2, "entry": 3}


class Place(NamedTuple):
    layer: str
    unit: str


def placements() -> list[tuple[str, Place]]:
    """Every (pattern, place) of the tables above."""
    found = [(name, Place("core", "core")) for name in CORE]
    found += [(name, Place("plumbing", "plumbing")) for name in PLUMBING]
    for layer, units in (("backend", BACKENDS), ("adapter", ADAPTERS)):
        found += [(name, Place(layer, unit)) for unit, names in units.items() for name in names]
    return found + [(name, Place("entry", "entry")) for name in ENTRY]


def matches(pattern: str, module: str) -> bool:
    return in_package(module, pattern[:-2]) if pattern.endswith(".*") else module == pattern


def places_of(module: str) -> list[Place]:
    return [place for pattern, place in placements() if matches(pattern, module)]


def place_of(module: str) -> Place:
    (place,) = places_of(module)
    return place


def may_import(importer: Place, imported: Place) -> bool:
    """Its own unit (core and plumbing are one unit each), or any lower layer."""
    return importer.unit == imported.unit or RANK[imported.layer] < RANK[importer.layer]


# -- reading imports -------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def real_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / "sublim").rglob("*.py"))}


def _base_of(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    kept = package[: len(package) - node.level + 1]
    return ".".join([*kept, node.module] if node.module else kept)


def imports_of(module: str, source: str, known: set[str], is_package: bool = False) -> set[str]:
    """The modules `source` imports; `from a import b` is `a.b` where that is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _base_of(module, is_package, node)
            found |= {_target(base, alias.name, known) for alias in node.names}
    return found


def _target(base: str, name: str, known: set[str]) -> str:
    return f"{base}.{name}" if f"{base}.{name}" in known else base


def in_package(target: str, package: str) -> bool:
    return target == package or target.startswith(package + ".")


def violations(module: str, imported: set[str]) -> Iterator[str]:
    importer = place_of(module)
    for target in sorted(imported):
        if in_package(target, "tests"):
            yield f"{module} imports {target}: nothing in the package imports the tests"
        elif in_package(target, "sublim") and not may_import(importer, place_of(target)):
            yield f"{module} ({importer.layer} {importer.unit}) imports {target}"


def violations_in(module: str, source: str, is_package: bool = False) -> list[str]:
    known = set(real_modules())
    return list(violations(module, imports_of(module, source, known, is_package)))


# -- the rules hold on the real code ---------------------------------------------------------


def test_every_module_has_exactly_one_place_in_the_layers() -> None:
    unplaced = {module: len(places_of(module)) for module in real_modules()}
    assert {module: n for module, n in unplaced.items() if n != 1} == {}


def test_every_name_in_the_layer_tables_is_a_real_module() -> None:
    modules = set(real_modules())
    patterns = [pattern for pattern, _ in placements()]
    assert [p for p in patterns if not any(matches(p, m) for m in modules)] == []


def test_no_module_imports_against_the_layer_rules() -> None:
    found = []
    for module, path in real_modules().items():
        found += violations_in(module, path.read_text(), path.name == "__init__.py")
    assert found == []


def test_the_backend_registry_names_only_backend_modules_as_strings() -> None:
    from sublim.core.backends import BROKERS, STORES

    targets = {entry.target.split(":")[0] for entry in [*STORES.values(), *BROKERS.values()]}
    assert targets <= set(real_modules())
    assert {place_of(target).layer for target in targets} == {"backend"}


# -- the checker itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("sublim.core.service", "from sublim.broker.redis import RedisBroker"),
        ("sublim.core.model", "def f():\n    import sublim.store.postgres\n"),
        ("sublim.core.service", "from ..broker import redis"),
        ("sublim.config", "from sublim import api"),
        ("sublim.store.postgres", "from sublim.broker.postgres import PostgresBroker"),
        ("sublim.store._postgres_rows", "from sublim.store import _sqlite_rows"),
        ("sublim.broker.pubsub", "from sublim.store.firestore import FirestoreStore"),
        ("sublim.broker.amqp", "from sublim.executor.node import ExecutionNode"),
        ("sublim.datastore.server", "async def run():\n    from sublim.cli.serve import x\n"),
        ("sublim.executor.node", "from sublim.cli import serve"),
        ("sublim.api.app", "from sublim.executor.node import ExecutionNode"),
        ("sublim.client.sync", "from sublim.testing import Harness"),
        ("sublim.engines.postgres", "from sublim.broker.postgres import MIGRATIONS"),
        ("sublim.cli.serve", "from tests.engines import POSTGRES_URL"),
    ],
)
def test_the_checker_reports_a_forbidden_import(module: str, source: str) -> None:
    assert len(violations_in(module, source)) == 1


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("sublim.core.service", "from sublim.broker.base import Broker\nfrom . import backends"),
        ("sublim.store.postgres", "from sublim.engines import postgres\nfrom ._rows import x"),
        ("sublim.broker.redis", "from sublim.broker import _redis_lua"),
        ("sublim.broker.pubsub", "from sublim.engines.pubsub import PullSpec"),
        ("sublim.store.remote", "from sublim.datastore import codec"),
        ("sublim.api.routes_tasks", "from .deps import ServiceDep"),
        ("sublim.cli.serve", "from sublim.executor.node import ExecutionNode"),
        ("sublim.testing", "from sublim.store.memory import MemoryStore"),
    ],
)
def test_the_checker_lets_an_allowed_import_pass(module: str, source: str) -> None:
    assert violations_in(module, source) == []


def test_the_checker_resolves_relative_imports_from_a_package() -> None:
    known = set(real_modules())
    assert imports_of("sublim.api", "from .app import create_app", known, True) == {
        "sublim.api.app"
    }


# -- docs/architecture.md names every module with its layer ---------------------------------

#: A tree line: indentation, then `name.py` or `name/`, then (for a module) `[layer]`.
ENTRY_LINE = re.compile(r"^(?P<indent> *)(?P<name>\w+(?:\.py|/))(?:\s+\[(?P<layer>\w+)\])?")


def documented_modules() -> dict[str, str | None]:
    """Module → the layer the tree of docs/architecture.md gives it."""
    tree = ARCHITECTURE.read_text().split("```\nsrc/sublim/\n", 1)[1].split("```", 1)[0]
    found: dict[str, str | None] = {}
    packages: list[str] = ["sublim"]
    for line in tree.splitlines():
        entry = ENTRY_LINE.match(line)
        if entry is None or len(entry["indent"]) % 2:
            continue
        del packages[len(entry["indent"]) // 2 :]
        if entry["name"].endswith("/"):
            packages.append(entry["name"][:-1])
            continue
        stem = entry["name"][:-3]
        found[".".join(packages if stem == "__init__" else [*packages, stem])] = entry["layer"]
    return found


def test_the_architecture_page_names_every_module() -> None:
    generated = {m for m in real_modules() if m.rsplit(".", 1)[-1].startswith("datastore_pb2")}
    assert set(real_modules()) - generated - set(documented_modules()) == set()


def test_every_module_the_architecture_page_names_exists() -> None:
    assert set(documented_modules()) - set(real_modules()) == set()


def test_the_architecture_page_gives_each_module_its_layer() -> None:
    given = documented_modules()
    wrong = {m: layer for m, layer in given.items() if layer != place_of(m).layer}
    assert wrong == {}


def test_the_architecture_page_draws_every_layer() -> None:
    page = ARCHITECTURE.read_text()
    assert all(f"[{layer}]" in page.split("```", 2)[1] for layer in RANK)
