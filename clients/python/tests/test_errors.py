"""Error answers of a live server mapped to exceptions carrying the server's message."""

from __future__ import annotations

import time

import pytest
from live import ADMIN_KEY, SCOPED_KEY, SCOPED_USER, Server

from memory_reflector import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ReflectorClient,
    ReflectorError,
    ValidationError,
)


def test_422_carries_the_field(client: ReflectorClient, user_id: str) -> None:
    with pytest.raises(ValidationError) as bad_time:
        client.store_turn(user_id, "s1", "hi", timestamp="yesterday-ish")
    err = bad_time.value
    assert (err.status, err.code, err.field) == (422, "validation_failed", "timestamp")
    assert "RFC 3339" in err.message and isinstance(err, ReflectorError)

    with pytest.raises(ValidationError) as bad_limit:
        client.list_episodic(user_id, limit=0)
    assert bad_limit.value.field == "limit"

    with pytest.raises(ValidationError) as bad_tz:
        client.store_turn(user_id, "s1", "hi", metadata={"timezone": "Mars/Olympus"})
    assert bad_tz.value.field == "metadata.timezone"


def test_404(client: ReflectorClient, user_id: str) -> None:
    with pytest.raises(NotFoundError) as missing_job:
        client.get_job("no-such-job")
    assert missing_job.value.status == 404 and "no-such-job" in missing_job.value.message
    with pytest.raises(NotFoundError, match="no episode"):
        client.update_episode(user_id, 999_999, text="x")


def test_409_same_interaction_id_other_body(client: ReflectorClient, user_id: str) -> None:
    client.store_turn(user_id, "s1", "first body", interaction_id=f"{user_id}-dup")
    with pytest.raises(ConflictError) as conflict:
        client.store_turn(user_id, "s1", "another body", interaction_id=f"{user_id}-dup")
    assert conflict.value.status == 409 and conflict.value.code == "conflict"
    assert "already used" in conflict.value.message


def test_400_and_413(client: ReflectorClient, user_id: str) -> None:
    with pytest.raises(BadRequestError) as bad:
        client.purge_dead_letters()
    assert bad.value.code == "bad_request"
    with pytest.raises(PayloadTooLargeError) as large:
        client.add_episode(user_id, "x" * (1 << 20))
    assert large.value.status == 413 and "max_body_bytes" in large.value.message


def test_401_without_or_with_an_unknown_key(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REFLECTOR_API_KEY", raising=False)
    with ReflectorClient(server.url) as anonymous:
        assert anonymous.health().ok  # public
        with pytest.raises(AuthenticationError) as no_key:
            anonymous.list_episodic("ana")
        assert no_key.value.status == 401 and no_key.value.code == "unauthorized"
    with ReflectorClient(server.url, api_key="not-a-key-of-this-server") as wrong:
        with pytest.raises(AuthenticationError):
            wrong.context("ana", "x")


def test_api_key_from_the_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFLECTOR_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("REFLECTOR_URL", server.url)
    with ReflectorClient() as c:
        assert c.base_url == server.url
        assert c.queue_status().backend == "embedded"


def test_403_for_a_key_limited_to_other_users(server: Server) -> None:
    with ReflectorClient(server.url, api_key=SCOPED_KEY) as scoped:
        stored = scoped.store_turn(SCOPED_USER, "s1", "hello")
        assert scoped.get_job(stored.reflection_job_id).user_id == SCOPED_USER
        with pytest.raises(PermissionDeniedError) as other_user:
            scoped.list_short_term("someone-else")
        assert other_user.value.status == 403 and other_user.value.code == "forbidden"
        with pytest.raises(PermissionDeniedError):
            scoped.store_turn("someone-else", "s1", "hello")
        with pytest.raises(PermissionDeniedError):
            scoped.queue_status()  # admin only


def test_429_carries_retry_after(backlog_server: Server) -> None:
    with ReflectorClient(backlog_server.url, max_retries=0) as c:
        first = c.store_turn("bea", "s1", "first turn")
        assert first.status == "queued"
        with pytest.raises(RateLimitError) as refused:
            c.store_turn("bea", "s1", "second turn")
        err = refused.value
        assert err.status == 429 and err.code == "too_many_requests"
        assert err.retry_after == 10  # no worker completes anything: 10 s
        assert err.body["retry_after_s"] == 10 and "NOT stored" in err.message
        # A resend of the stored turn is answered as before, never with 429.
        again = c.store_turn("bea", "s1", "first turn", interaction_id=first.interaction_id)
        assert again.idempotent_replay

    # With retries, a Retry-After beyond max_retry_wait is not waited for: raised at once.
    with ReflectorClient(backlog_server.url, max_retries=3, max_retry_wait=5) as c:
        started = time.monotonic()
        with pytest.raises(RateLimitError):
            c.store_turn("bea", "s1", "third turn")
        assert time.monotonic() - started < 2
