"""The caps of `sublim.core.caps` refuse one item over them, never one at them."""

from __future__ import annotations

from collections.abc import Callable, Collection

import pytest

from sublim.core.caps import (
    MAX_DEPENDS_ON,
    MAX_LABEL_FILTERS,
    MAX_LABELS_PER_TASK,
    check_depends_on,
    check_label_filters,
    check_labels,
)
from sublim.errors import InvalidInput
from sublim.store.base import TaskPatch, TaskQuery


def labels(count: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(count)}


def test_each_cap_takes_exactly_its_limit() -> None:
    check_labels(labels(MAX_LABELS_PER_TASK))
    check_label_filters(labels(MAX_LABEL_FILTERS))
    check_depends_on([f"id{i}" for i in range(MAX_DEPENDS_ON)])
    assert len(TaskQuery(labels=labels(MAX_LABEL_FILTERS)).labels) == MAX_LABEL_FILTERS
    assert TaskPatch(labels=labels(MAX_LABELS_PER_TASK)).labels == labels(MAX_LABELS_PER_TASK)


@pytest.mark.parametrize(
    ("check", "limit"),
    [
        (check_labels, MAX_LABELS_PER_TASK),
        (check_label_filters, MAX_LABEL_FILTERS),
        (check_depends_on, MAX_DEPENDS_ON),
    ],
)
def test_one_over_a_cap_is_invalid_input_that_names_it(
    check: Callable[[Collection[str]], None], limit: int
) -> None:
    with pytest.raises(InvalidInput, match=f"{limit + 1} .*at most {limit} are allowed"):
        check(labels(limit + 1))


def test_a_patch_without_labels_is_not_capped() -> None:
    assert TaskPatch(name="renamed").labels is None
