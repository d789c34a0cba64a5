"""Backends chosen by URL scheme, imported lazily.

The core never imports a backend module: it asks this registry for the class behind a URL's
scheme. A backend whose driver is not installed names the extra that brings it.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sublim.broker.base import Broker
from sublim.config import Settings
from sublim.core.redaction import redact
from sublim.errors import ConfigError
from sublim.store.base import Store


class Backend(NamedTuple):
    target: str  # "module:Class"
    extra: str | None  # the `pip install sublim[extra]` that brings its driver
    #: Its `from_url(url, settings)` reads settings too (the datastore client's credentials,
    #: the Pub/Sub broker's updates topic, `broker_max_deliveries`).
    takes_settings: bool = False


STORES: dict[str, Backend] = {
    "memory": Backend("sublim.store.memory:MemoryStore", None),
    "sqlite": Backend("sublim.store.sqlite:SqliteStore", None),
    "postgresql": Backend("sublim.store.postgres:PostgresStore", "postgres"),
    "postgres": Backend("sublim.store.postgres:PostgresStore", "postgres"),
    "grpc": Backend("sublim.store.remote:RemoteStore", None, takes_settings=True),
    "grpcs": Backend("sublim.store.remote:RemoteStore", None, takes_settings=True),
    "firestore": Backend("sublim.store.firestore:FirestoreStore", "gcp"),
}

BROKERS: dict[str, Backend] = {
    "memory": Backend("sublim.broker.memory:MemoryBroker", None),
    "sqlite": Backend("sublim.broker.sqlite:SqliteBroker", None),
    "postgresql": Backend("sublim.broker.postgres:PostgresBroker", "postgres"),
    "postgres": Backend("sublim.broker.postgres:PostgresBroker", "postgres"),
    "redis": Backend("sublim.broker.redis:RedisBroker", "redis"),
    "amqp": Backend("sublim.broker.amqp:AmqpBroker", "amqp", takes_settings=True),
    "amqps": Backend("sublim.broker.amqp:AmqpBroker", "amqp", takes_settings=True),
    "nats": Backend("sublim.broker.nats:NatsBroker", "nats", takes_settings=True),
    "pubsub": Backend("sublim.broker.pubsub:PubSubBroker", "gcp", takes_settings=True),
}


def scheme_of(url: str) -> str:
    scheme = urlsplit(url).scheme
    if not scheme or "://" not in url:
        raise ConfigError(
            f"backend URL {redact(url)!r} has no scheme (such as sqlite:///sublim.db)"
        )
    return scheme.split("+", 1)[0].lower()


def _load(
    kind: str, registry: dict[str, Backend], url: str, settings: Settings | None = None
) -> Any:
    scheme = scheme_of(url)
    backend = registry.get(scheme)
    if backend is None:
        known = ", ".join(sorted(registry))
        where = redact(url)
        raise ConfigError(f"unknown {kind} URL scheme {scheme!r} in {where!r}; known: {known}")
    module_name, class_name = backend.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if backend.extra is None:
            raise
        raise ConfigError(
            f"the {scheme}:// {kind} needs extra packages: pip install 'sublim[{backend.extra}]'"
            f" ({exc.name} is missing)"
        ) from exc
    cls = getattr(module, class_name)
    if backend.takes_settings and settings is not None:
        return cls.from_url(url, settings)
    return cls.from_url(url)


def store_from_url(url: str, settings: Settings | None = None) -> Store:
    """A store for `url`, not yet opened; `settings` give it what the URL does not say."""
    store: Store = _load("store", STORES, url, settings)
    return store


def broker_from_url(url: str, settings: Settings | None = None) -> Broker:
    """A broker for `url`, not yet opened; `settings` give it what the URL does not say."""
    broker: Broker = _load("broker", BROKERS, url, settings)
    return broker
