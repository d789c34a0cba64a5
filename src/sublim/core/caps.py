"""Caps on the sizes of lists a caller hands the core: label filters per query, labels per
task, executions an execution depends on.

Each one bounds the work (and the SQL variables) one call can ask for; going over is an
`InvalidInput` (422 over HTTP) that names the cap. The values follow the clouds' labels (64
per resource on Google Cloud, 50 tags on AWS); 20 filters are more than any selector people
write by hand; 100 dependencies cover a wide fan-in. They are checked where the core takes the
input (`Service`, the query and patch models, the datastore's RPCs), so that the library, HTTP
and gRPC paths agree.
"""

from __future__ import annotations

from collections.abc import Collection

from sublim.errors import InvalidInput

#: Labels one task may carry.
MAX_LABELS_PER_TASK = 64
#: `label=key:value` filters one task query may hold.
MAX_LABEL_FILTERS = 20
#: Executions one execution may depend on (`depends_on`).
MAX_DEPENDS_ON = 100


def _check_count(items: Collection[object], limit: int, what: str) -> None:
    if len(items) > limit:
        raise InvalidInput(f"{len(items)} {what}: at most {limit} are allowed")


def check_labels(labels: Collection[str]) -> None:
    """A task's labels: at most `MAX_LABELS_PER_TASK`."""
    _check_count(labels, MAX_LABELS_PER_TASK, "labels on one task")


def check_label_filters(labels: Collection[str]) -> None:
    """A query's label filters: at most `MAX_LABEL_FILTERS`."""
    _check_count(labels, MAX_LABEL_FILTERS, "label filters in one query")


def check_depends_on(execution_ids: Collection[str]) -> None:
    """The executions one execution waits on: at most `MAX_DEPENDS_ON`."""
    _check_count(execution_ids, MAX_DEPENDS_ON, "executions in depends_on")
