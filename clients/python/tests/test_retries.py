"""Retries, timeouts and error mapping, against httpx.MockTransport (no server needed)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

import memory_reflector._core as core
from memory_reflector import (
    AsyncReflectorClient,
    JobWaitTimeoutError,
    RateLimitError,
    ReflectorClient,
    ReflectorConnectionError,
    ReflectorTimeoutError,
    ServerError,
    ServiceUnavailableError,
)

STORED = {
    "interaction_id": "x",
    "reflection_job_id": "job-1",
    "priority": "normal",
    "status": "queued",
    "idempotent_replay": False,
}
EPISODE = {
    "id": 1,
    "user_id": "ana",
    "speaker": "ana",
    "text": "t",
    "summary": "t",
    "importance": 0.5,
    "tags": [],
    "occurred_at": "2024-01-01T00:00:00Z",
    "observed_at": "2024-01-01T00:00:00Z",
    "evidence": ["manual:1"],
    "job_id": "",
}
TOO_MANY = {"error": "too_many_requests", "message": "backlog at its ceiling", "retry_after_s": 1}


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff without Retry-After is tested for its count, not its length."""
    monkeypatch.setattr(core, "backoff", lambda attempt: 0.01)


class Script:
    """A mock service answering from a list of responses (or exceptions), recording requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **kw: object) -> ReflectorClient:
        http = httpx.Client(transport=httpx.MockTransport(self))
        return ReflectorClient("http://reflector.test", http_client=http, **kw)  # type: ignore[arg-type]


def ok(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def too_many(retry_after: str | None = "1") -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return httpx.Response(429, json=TOO_MANY, headers=headers)


def test_429_is_retried_after_retry_after_with_the_same_body() -> None:
    script = Script(too_many("1"), ok(STORED, 202))
    with script.client() as c:
        stored = c.store_turn("ana", "s1", "hi")
    assert stored.reflection_job_id == "job-1"
    assert len(script.requests) == 2
    waited = script.times[1] - script.times[0]
    assert 0.95 <= waited < 2.0, waited
    first, second = (json.loads(r.content) for r in script.requests)
    assert first == second and first["interaction_id"]  # generated once, resent as is


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    script = Script(too_many(when), ok(STORED, 202))
    with script.client() as c:
        c.store_turn("ana", "s1", "hi")
    assert 0.5 <= script.times[1] - script.times[0] < 3.0


def test_retries_run_out() -> None:
    script = Script(too_many("0"), too_many("0"), too_many("0"))
    with script.client(max_retries=2) as c, pytest.raises(RateLimitError) as err:
        c.store_turn("ana", "s1", "hi")
    assert len(script.requests) == 3
    assert err.value.retry_after == 0 and err.value.message == "backlog at its ceiling"


def test_a_retry_after_longer_than_max_retry_wait_is_raised_at_once() -> None:
    script = Script(too_many("30"))
    with script.client(max_retry_wait=5) as c, pytest.raises(RateLimitError) as err:
        c.store_turn("ana", "s1", "hi")
    assert err.value.retry_after == 30 and len(script.requests) == 1


def test_max_retries_0_disables_retries() -> None:
    script = Script(too_many("0"))
    with script.client(max_retries=0) as c, pytest.raises(RateLimitError):
        c.store_turn("ana", "s1", "hi")


def test_503_is_retried_then_raised() -> None:
    down = {"error": "unavailable", "message": "store is down"}
    script = Script(ok(down, 503), ok(down, 503))
    with script.client(max_retries=1) as c, pytest.raises(ServiceUnavailableError) as err:
        c.user_stats("ana")
    assert err.value.message == "store is down" and len(script.requests) == 2


def test_health_503_is_a_report_not_an_error() -> None:
    report = {"status": "unhealthy", "components": {"store": {"status": "down", "error": "gone"}}}
    script = Script(ok(report, 503))
    with script.client() as c:
        health = c.health()
    assert health.status == "unhealthy" and not health.ok and health.uptime_s is None
    assert health.components["store"].details == {"error": "gone"}


def test_connection_refused_is_retried_for_any_request() -> None:
    script = Script(httpx.ConnectError("refused"), ok(EPISODE, 201))
    with script.client() as c:
        assert c.add_episode("ana", "t").id == 1
    assert len(script.requests) == 2


def test_a_read_timeout_is_retried_only_when_idempotent() -> None:
    script = Script(httpx.ReadTimeout("slow"), ok(STORED, 202))
    with script.client() as c:
        c.store_turn("ana", "s1", "hi")  # carries an interaction_id: safe
    assert len(script.requests) == 2

    script = Script(httpx.ReadTimeout("slow"))
    with script.client() as c, pytest.raises(ReflectorTimeoutError):
        c.add_episode("ana", "t")  # could be stored twice: not resent
    assert len(script.requests) == 1


def test_connection_errors_run_out() -> None:
    script = Script(*[httpx.ConnectError("refused")] * 3)
    with script.client(max_retries=2) as c, pytest.raises(ReflectorConnectionError) as err:
        c.get_job("j")
    assert err.value.status is None and "GET /api/reflection/jobs/j" in str(err.value)


def test_an_unreachable_server() -> None:
    with ReflectorClient("http://127.0.0.1:9", max_retries=0) as c:
        with pytest.raises(ReflectorConnectionError):
            c.health()


def test_other_statuses_and_bodies_that_are_not_json() -> None:
    script = Script(httpx.Response(502, text="Bad Gateway"))
    with script.client(max_retries=0) as c, pytest.raises(ServerError) as err:
        c.health()
    assert err.value.status == 502 and err.value.message == "Bad Gateway" and err.value.code is None


def test_requests_carry_key_user_agent_and_query() -> None:
    script = Script(ok({"user_id": "a b", "query": "q", "limit": 3, "items": []}))
    with script.client(api_key="k" * 20) as c:
        c.search(
            "a b",
            "q",
            limit=3,
            tier=["episodic", "semantic"],
            since=datetime(2024, 1, 2),
            until=datetime(2024, 3, 1).date(),
        )
    req = script.requests[0]
    assert req.headers["authorization"] == "Bearer " + "k" * 20
    assert req.headers["user-agent"].startswith("memory-reflector-client/")
    assert req.url.raw_path.startswith(b"/api/memory/search/a%20b?")
    assert dict(req.url.params) == {
        "query": "q",
        "limit": "3",
        "tier": "episodic,semantic",
        "since": "2024-01-02T00:00:00",
        "until": "2024-03-01",
    }


async def test_async_client_honours_retry_after() -> None:
    script = Script(too_many("1"), ok(STORED, 202))
    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    async with AsyncReflectorClient("http://reflector.test", http_client=http) as c:
        stored = await c.store_turn("ana", "s1", "hi")
    await http.aclose()
    assert stored.status == "queued"
    assert 0.95 <= script.times[1] - script.times[0] < 2.0


def test_wait_for_job_times_out() -> None:
    job = {
        "job_id": "j",
        "user_id": "ana",
        "state": "queued",
        "priority": "low",
        "attempts": 0,
        "max_retries": 3,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "tiers": [],
        "job": {},
    }

    def always(request: httpx.Request) -> httpx.Response:
        return ok(job)

    http = httpx.Client(transport=httpx.MockTransport(always))
    with ReflectorClient("http://reflector.test", http_client=http) as c:
        with pytest.raises(JobWaitTimeoutError) as err:
            c.wait_for_job("j", timeout=0.3)
    assert err.value.state == "queued" and isinstance(err.value, TimeoutError)
