"""What the client sends for the filters of a list, page after page (no server: a mock
transport answers)."""

from __future__ import annotations

import httpx

import sublim
from sublim.client import _wire


def _two_pages(seen: list[httpx.QueryParams]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        cursor = None if request.url.params.get("cursor") else "next"
        return httpx.Response(200, json={"items": [], "next_cursor": cursor})

    return httpx.MockTransport(answer)


def test_a_status_filter_given_as_a_generator_filters_every_page() -> None:
    seen: list[httpx.QueryParams] = []
    with sublim.Client("http://api.test") as client:
        client.close()
        client._http = httpx.Client(base_url=client.url, transport=_two_pages(seen))
        statuses = (status for status in ["Passed", "Failed"])
        assert list(client.iter_executions(status=statuses, topic="Hello")) == []
    assert [page.get_list("status") for page in seen] == [["Passed", "Failed"]] * 2
    assert [page.get("cursor") for page in seen] == [None, "next"]


def test_the_filter_of_one_task_lists_below_that_task() -> None:
    where = _wire.ExecutionFilter.of("01J0000000000000000000000A", None, None, None, None)
    call = where.page(10, None)
    assert call.path == "/v1/tasks/01J0000000000000000000000A/executions"
    assert call.subject == ("task", "01J0000000000000000000000A")
    assert call.params == [("limit", "10")]
