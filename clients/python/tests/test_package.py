"""The package's surface: the two clients match, everything public is documented, every
operation of the service's OpenAPI document has a method, and timestamps parse."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from live import Server

import memory_reflector
from memory_reflector import AsyncReflectorClient, ReflectorClient, errors, models
from memory_reflector.models import parse_datetime

# Each operation of the service (method, path) and the client method that calls it.
OPERATIONS = {
    ("post", "/api/interactions"): "store_turn",
    ("get", "/api/memory/context/{user_id}"): "context",
    ("get", "/api/memory/search/{user_id}"): "search",
    ("get", "/api/memory/short-term/{user_id}"): "list_short_term",
    ("get", "/api/memory/episodic/{user_id}"): "list_episodic",
    ("get", "/api/memory/semantic/{user_id}"): "list_semantic",
    ("get", "/api/memory/procedural/{user_id}"): "list_procedural",
    ("post", "/api/memory/episodic/{user_id}"): "add_episode",
    ("post", "/api/memory/semantic/{user_id}"): "add_fact",
    ("post", "/api/memory/procedural/{user_id}"): "add_rule",
    ("patch", "/api/memory/episodic/{user_id}/{id}"): "update_episode",
    ("patch", "/api/memory/semantic/{user_id}/{id}"): "update_fact",
    ("patch", "/api/memory/procedural/{user_id}/{id}"): "update_rule",
    ("delete", "/api/memory/episodic/{user_id}/{id}"): "delete_episode",
    ("delete", "/api/memory/semantic/{user_id}/{id}"): "delete_fact",
    ("delete", "/api/memory/procedural/{user_id}/{id}"): "delete_rule",
    ("get", "/api/memory/edits/{user_id}"): "list_edits",
    ("get", "/api/memory/stats/{user_id}"): "user_stats",
    ("delete", "/api/memory/user/{user_id}"): "forget_user",
    ("get", "/api/reflection/jobs/{job_id}"): "get_job",
    ("get", "/api/reflection/dlq"): "list_dead_letters",
    ("post", "/api/reflection/dlq/replay"): "replay_dead_letters",
    ("post", "/api/reflection/dlq/purge"): "purge_dead_letters",
    ("get", "/api/reflection/health"): "health",
    ("get", "/api/reflection/stats"): "reflection_stats",
    ("get", "/api/reflection/queue-status"): "queue_status",
    ("get", "/metrics"): "metrics",
    ("get", "/api/users"): "list_users",
    ("get", "/api/me"): "me",
    ("get", "/api/memory/turn/{user_id}"): "find_turn",
}


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    return {n: f for n, f in vars(cls).items() if not n.startswith("_") and callable(f)}


def test_every_operation_of_the_service_has_a_method(server: Server) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    served = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served - set(OPERATIONS) == set(), "operations without a client method"
    for name in OPERATIONS.values():
        assert hasattr(ReflectorClient, name) and hasattr(AsyncReflectorClient, name)


def test_sync_and_async_clients_match() -> None:
    sync, asyn = _public(ReflectorClient), _public(AsyncReflectorClient)
    assert set(sync) - {"close"} == set(asyn) - {"aclose"}
    for name, fn in sync.items():
        if name == "close":
            continue
        assert (
            inspect.signature(fn).parameters.keys()
            == inspect.signature(asyn[name]).parameters.keys()
        ), name
        if name != "iter_tier":
            assert inspect.iscoroutinefunction(asyn[name]), name
    assert inspect.isasyncgenfunction(AsyncReflectorClient.iter_tier)


def test_every_public_item_has_a_docstring() -> None:
    missing = []
    for module in (memory_reflector, errors, models):
        assert module.__doc__
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if not inspect.getdoc(obj):
                    missing.append(name)
    for cls in (ReflectorClient, AsyncReflectorClient):
        for name, fn in _public(cls).items():
            if not inspect.getdoc(fn):
                missing.append(f"{cls.__name__}.{name}")
    assert missing == []


def test_the_package_is_typed() -> None:
    from importlib.resources import files

    assert files("memory_reflector").joinpath("py.typed").is_file()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-08-20T18:40:00.000Z", datetime(2024, 8, 20, 18, 40, tzinfo=timezone.utc)),
        ("2024-08-20T18:40:00Z", datetime(2024, 8, 20, 18, 40, tzinfo=timezone.utc)),
        (
            "2024-08-20T18:40:00.123456789+02:00",
            datetime(2024, 8, 20, 18, 40, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-08-20 18:40:00", datetime(2024, 8, 20, 18, 40, tzinfo=timezone.utc)),
    ],
)
def test_timestamps_parse(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected
