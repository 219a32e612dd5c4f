"""The async client against a live server."""

from __future__ import annotations

import asyncio

import pytest

from memory_reflector import AsyncReflectorClient, Episode, NotFoundError, ValidationError


async def test_store_wait_context_and_browse(aclient: AsyncReflectorClient, user_id: str) -> None:
    stored = await asyncio.gather(
        *(
            aclient.store_turn(user_id, "s1", text, timestamp=f"2024-09-0{i + 1}T12:00:00Z")
            for i, text in enumerate(
                [
                    "I moved to Oslo last month.",
                    "Please always answer briefly.",
                    "My brother Tom plays the violin.",
                ]
            )
        )
    )
    jobs = await asyncio.gather(
        *(aclient.wait_for_job(s.reflection_job_id, timeout=20) for s in stored)
    )
    assert [j.state for j in jobs] == ["completed"] * 3

    ctx = await aclient.context(user_id, "Where does the user live?")
    assert "Oslo" in ctx.context and len(ctx.short_term) == 3

    turns = [t async for t in aclient.iter_tier(user_id, "short_term", page_size=2)]
    assert [t.timestamp.day for t in turns] == [3, 2, 1]
    episodes = [e async for e in aclient.iter_tier(user_id, "episodic", page_size=1)]
    assert episodes and all(isinstance(e, Episode) for e in episodes)
    assert (await aclient.user_stats(user_id)).turns == 3


async def test_edits_and_errors(aclient: AsyncReflectorClient, user_id: str) -> None:
    episode = await aclient.add_episode(user_id, "Ana's passport expires in 2027.")
    assert (await aclient.update_episode(user_id, episode.id, importance=1.0)).importance == 1.0
    page = await aclient.list_edits(user_id)
    assert [e.action for e in page.items] == ["update", "add"]
    await aclient.delete_episode(user_id, episode.id)
    with pytest.raises(NotFoundError):
        await aclient.delete_episode(user_id, episode.id)
    with pytest.raises(ValidationError) as err:
        await aclient.add_rule(user_id, "Be brief.", "wish")  # type: ignore[arg-type]
    assert err.value.field == "kind"


async def test_operations(aclient: AsyncReflectorClient) -> None:
    assert (await aclient.health()).ok
    assert (await aclient.queue_status()).backend == "embedded"
    assert "reflector_" in await aclient.metrics()
    assert (await aclient.list_dead_letters()).jobs == []
    assert (await aclient.reflection_stats()).completed_per_s_last_minute >= 0


async def test_users_me_and_find_turn(aclient: AsyncReflectorClient, user_id: str) -> None:
    stored = await aclient.store_turn(user_id, "s1", "I moved to Oslo last month.")
    await aclient.wait_for_job(stored.reflection_job_id, timeout=20)
    assert (await aclient.me()).all_users
    page = await aclient.list_users(user_id)
    assert [u.user_id for u in page.users] == [user_id] and page.users[0].turns == 1
    found = await aclient.find_turn(user_id, evidence=stored.interaction_id)
    assert found.status == "stored" and found.by == "evidence"
    assert found.turn is not None and found.turn.interaction_id == stored.interaction_id
