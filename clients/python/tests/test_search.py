"""Search (``GET /api/memory/search/{user_id}``) with tier and date filters, live."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterator

import httpx
import pytest
from live import ADMIN_KEY, Server

from memory_reflector import AsyncReflectorClient, ReflectorClient, ValidationError

TURNS = [
    ("2024-03-10T09:00:00Z", "I adopted a dog named Rex. Please always call him Rex."),
    ("2024-06-15T18:30:00Z", "Rex learned to swim in the lake yesterday."),
    ("2024-09-01T08:15:00Z", "I took Rex to the vet for his vaccinations."),
]


@pytest.fixture(scope="module")
def searchable(server: Server) -> Iterator[tuple[ReflectorClient, str]]:
    """A user with three reflected turns months apart, on a server that has the route."""
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    if "/api/memory/search/{user_id}" not in paths:
        pytest.fail(
            "this reflector binary has no GET /api/memory/search/{user_id} route "
            "(REFLECTOR_BIN predates the search feature)",
            pytrace=False,
        )
    with ReflectorClient(server.url, api_key=ADMIN_KEY) as c:
        user = "search-user"
        for ts, text in TURNS:
            c.wait_for_job(
                c.store_turn(user, "s1", text, timestamp=ts).reflection_job_id, timeout=20
            )
        yield c, user


def test_search_ranks_items_of_every_tier(searchable: tuple[ReflectorClient, str]) -> None:
    c, user = searchable
    found = c.search(user, "Rex the dog", limit=20)
    assert found.user_id == user and found.query == "Rex the dog" and found.limit == 20
    assert found.items and len(found.items) <= 20
    scores = [i.score for i in found.items]
    assert scores == sorted(scores, reverse=True)
    assert {i.tier for i in found.items} >= {"episodic"}
    assert all(i.date is not None and i.date.tzinfo is not None for i in found.items)
    assert len(c.search(user, "Rex", limit=1).items) == 1


def test_search_by_tier(searchable: tuple[ReflectorClient, str]) -> None:
    c, user = searchable
    episodic = c.search(user, "Rex", tier="episodic", limit=50).items
    assert episodic and {i.tier for i in episodic} == {"episodic"}
    two = c.search(user, "Rex", tier=["episodic", "procedural"], limit=50).items
    assert {i.tier for i in two} <= {"episodic", "procedural"}
    assert {i.id for i in episodic} <= {i.id for i in two if i.tier == "episodic"}


def test_search_by_date(searchable: tuple[ReflectorClient, str]) -> None:
    c, user = searchable
    everything = c.search(user, "Rex", tier="episodic", limit=50).items
    summer = c.search(
        user, "Rex", tier="episodic", since=date(2024, 6, 1), until="2024-06-30", limit=50
    ).items
    assert summer and len(summer) < len(everything)
    for item in summer:
        assert item.date is not None
        assert (
            datetime(2024, 6, 1, tzinfo=timezone.utc)
            <= item.date
            < datetime(2024, 7, 1, tzinfo=timezone.utc)
        )
    late = c.search(user, "Rex", since=datetime(2024, 8, 1, tzinfo=timezone.utc), limit=50).items
    assert late and all(
        i.date is not None and i.date >= datetime(2024, 8, 1, tzinfo=timezone.utc) for i in late
    )
    early = c.search(user, "Rex", until=date(2024, 3, 31), limit=50).items
    assert all(
        i.date is not None and i.date < datetime(2024, 4, 1, tzinfo=timezone.utc) for i in early
    )


def test_search_refusals_name_the_field(searchable: tuple[ReflectorClient, str]) -> None:
    c, user = searchable
    for kwargs, field in [
        ({"tier": "graph"}, "tier"),
        ({"limit": 101}, "limit"),
        ({"since": "June"}, "since"),
        ({"since": "2024-06-01", "until": "2024-05-01"}, "until"),
    ]:
        with pytest.raises(ValidationError) as err:
            c.search(user, "Rex", **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field, kwargs
    with pytest.raises(ValidationError) as blank:
        c.search(user, "   ")
    assert blank.value.field == "query"


async def test_async_search(searchable: tuple[ReflectorClient, str], server: Server) -> None:
    _, user = searchable
    async with AsyncReflectorClient(server.url, api_key=ADMIN_KEY) as c:
        found = await c.search(user, "vet", tier=("episodic",), since="2024-08-01")
    assert found.items and all(i.tier == "episodic" for i in found.items)
