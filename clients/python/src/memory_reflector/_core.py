"""What the sync and async clients share.

Configuration, the requests of every endpoint, the retry policy, and the mapping of answers
to results and exceptions.

Each endpoint is a function returning a :class:`Call`: method, path, query, body and the
parser of its answer. The two clients only send calls (``httpx.Client`` or
``httpx.AsyncClient``) and sleep between attempts (``time.sleep`` or ``anyio.sleep``), so
the API surface is written once here.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar, Union
from urllib.parse import quote

import httpx

from . import models as m
from ._version import __version__
from .errors import (
    ReflectorConnectionError,
    ReflectorError,
    ReflectorTimeoutError,
    error_from_response,
    retry_after_seconds,
)

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT = 60.0

Instant = Union[str, date, datetime]
"""A point in time: an RFC 3339 string, a ``date`` or a ``datetime`` (naive means UTC)."""

Params = Mapping[str, Union[str, int, float, bool, None]]

# Statuses after which nothing was done: the request may be sent again as it is.
RETRY_STATUSES = frozenset({429, 503})

# Transport errors raised before the request reached the server: always safe to resend.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request of the API and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params | None = None
    json: Any = None
    idempotent: bool = False
    """Safe to resend after a failure mid-request (the service cannot apply it twice)."""
    ok_statuses: frozenset[int] = field(default_factory=frozenset)
    """Error statuses whose body is still the result (health answers 503 with its report)."""


@dataclass
class Settings:
    """The configuration shared by both clients (see :class:`ReflectorClient`)."""

    base_url: str
    api_key: str | None = field(repr=False)
    timeout: httpx.Timeout
    max_retries: int
    max_retry_wait: float
    headers: dict[str, str] = field(repr=False)

    @classmethod
    def make(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        max_retry_wait: float,
        headers: Mapping[str, str] | None,
    ) -> Settings:
        """Resolve arguments, then the environment, then defaults."""
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        url = base_url or os.environ.get("REFLECTOR_URL") or DEFAULT_BASE_URL
        key = api_key if api_key is not None else os.environ.get("REFLECTOR_API_KEY") or None
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(DEFAULT_TIMEOUT if timeout is None else timeout)
        all_headers = {
            "accept": "application/json",
            "user-agent": f"memory-reflector-client/{__version__} httpx/{httpx.__version__}",
        }
        if key:
            all_headers["authorization"] = f"Bearer {key}"
        all_headers.update(headers or {})
        return cls(url.rstrip("/"), key, timeout, max_retries, max_retry_wait, all_headers)

    def request_args(self, call: Call[Any]) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request`` for ``call``."""
        args: dict[str, Any] = {
            "method": call.method,
            "url": self.base_url + call.path,
            "headers": self.headers,
            "timeout": self.timeout,
        }
        if call.params:
            args["params"] = {k: _param(v) for k, v in call.params.items() if v is not None}
        if call.json is not None:
            args["json"] = call.json
        return args

    def delay_after_answer(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before resending after an error answer, or ``None``: give up.

        429 and 503 mean the service did nothing; it is asked again after its
        ``Retry-After`` (or an exponential backoff), unless that is longer than
        ``max_retry_wait``.
        """
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        asked = retry_after_seconds(response)
        if asked is None:
            return backoff(attempt)
        return asked if asked <= self.max_retry_wait else None

    def delay_after_error(
        self, call: Call[Any], exc: httpx.TransportError, attempt: int
    ) -> float | None:
        """Seconds to wait before resending after a transport error, or ``None``: give up.

        A request that never reached the service is always resent; one that may have
        reached it only when it is idempotent.
        """
        if attempt >= self.max_retries:
            return None
        if isinstance(exc, _NOT_SENT) or (call.idempotent and _retryable_transport(exc)):
            return backoff(attempt)
        return None


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5 s, 1 s, 2 s… up to 8 s."""
    return min(8.0, 0.5 * 2.0**attempt) * random.uniform(0.5, 1.0)


def _retryable_transport(exc: httpx.TransportError) -> bool:
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))


def transport_error(exc: httpx.TransportError, call: Call[Any]) -> ReflectorError:
    """The exception for a request that got no answer."""
    what = f"{call.method} {call.path}"
    if isinstance(exc, httpx.TimeoutException):
        detail = str(exc) or type(exc).__name__
        return ReflectorTimeoutError(f"{what} timed out ({detail})", code="timeout")
    detail = str(exc) or type(exc).__name__
    return ReflectorConnectionError(f"{what} failed: {detail}", code="connection_error")


def result(call: Call[T], response: httpx.Response) -> T:
    """The result of an answer, or the exception it maps to (raised)."""
    if response.status_code >= 400 and response.status_code not in call.ok_statuses:
        raise error_from_response(response)
    return call.parse(response)


def _param(value: str | int | float | bool) -> str | int | float:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def instant(value: Instant) -> str:
    """Format a point in time for the service (a naive datetime is UTC for the service)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def seg(value: str | int) -> str:
    """One path segment, percent-encoded (user ids may contain ``/``, ``?``, spaces…)."""
    return quote(str(value), safe="")


def _json(parse: Callable[[Mapping[str, Any]], T]) -> Callable[[httpx.Response], T]:
    def read(response: httpx.Response) -> T:
        try:
            return parse(response.json())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReflectorError(
                f"unexpected answer from the service ({response.status_code} "
                f"{response.request.method} {response.request.url.path}): {exc!r}",
                status=response.status_code,
                code="invalid_response",
            ) from exc

    return read


def _page(
    key: str, item: Callable[[Mapping[str, Any]], T]
) -> Callable[[httpx.Response], m.Page[T]]:
    return _json(lambda d: m.page_of(d, key, item))


def _deleted(item: Callable[[Mapping[str, Any]], T]) -> Callable[[httpx.Response], T]:
    return _json(lambda d: item(d["deleted"]))


def _text(response: httpx.Response) -> str:
    return response.text


def _drop_none(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _page_params(limit: int | None, offset: int | None) -> dict[str, int | None]:
    return {"limit": limit, "offset": offset}


# ----------------------------------------------------------------------------- turns

INTERACTION_KEYS = frozenset(
    {"session_id", "user_message", "assistant_response", "timestamp", "metadata", "interaction_id"}
)


def store_turn(
    user_id: str,
    session_id: str,
    user_message: str,
    assistant_response: str | None,
    timestamp: Instant | None,
    metadata: Mapping[str, Any] | None,
    interaction_id: str | None,
) -> Call[m.StoredTurn]:
    """``POST /api/interactions``; generates a uuid4 ``interaction_id`` when none is given."""
    body = _drop_none(
        {
            "user_id": user_id,
            "session_id": session_id,
            "user_message": user_message,
            "assistant_response": assistant_response,
            "timestamp": None if timestamp is None else instant(timestamp),
            "metadata": None if metadata is None else dict(metadata),
            "interaction_id": interaction_id or str(uuid.uuid4()),
        }
    )
    return Call(
        "POST", "/api/interactions", _json(m.StoredTurn.from_json), json=body, idempotent=True
    )


def store_interaction(user_id: str, interaction: Mapping[str, Any]) -> Call[m.StoredTurn]:
    """``store_turn`` from the original service's interaction dict."""
    unknown = set(interaction) - INTERACTION_KEYS - {"user_id"}
    if unknown:
        raise TypeError(f"unknown interaction keys: {', '.join(sorted(unknown))}")
    if interaction.get("user_id", user_id) != user_id:
        raise ValueError("interaction['user_id'] differs from user_id")
    if "session_id" not in interaction or "user_message" not in interaction:
        raise TypeError("an interaction needs 'session_id' and 'user_message'")
    return store_turn(
        user_id,
        interaction["session_id"],
        interaction["user_message"],
        interaction.get("assistant_response"),
        interaction.get("timestamp"),
        interaction.get("metadata"),
        interaction.get("interaction_id"),
    )


# ---------------------------------------------------------------------------- recall


def tiers_param(tier: str | Sequence[str] | None) -> str | None:
    """``tier`` as the service takes it: a comma-separated list."""
    if tier is None or isinstance(tier, str):
        return tier
    return ",".join(tier)


def context(
    user_id: str,
    query: str | None,
    limit: int | None,
    include_invalid: bool | None,
    max_tokens: int | None,
) -> Call[m.Context]:
    """``GET /api/memory/context/{user_id}``."""
    params = {
        "query": query,
        "limit": limit,
        "include_invalid": include_invalid,
        "max_tokens": max_tokens,
    }
    return Call(
        "GET",
        f"/api/memory/context/{seg(user_id)}",
        _json(m.Context.from_json),
        params,
        idempotent=True,
    )


def search(
    user_id: str,
    query: str,
    limit: int | None,
    tier: str | Sequence[str] | None,
    since: Instant | None,
    until: Instant | None,
) -> Call[m.SearchResult]:
    """``GET /api/memory/search/{user_id}``."""
    params = {
        "query": query,
        "limit": limit,
        "tier": tiers_param(tier),
        "since": None if since is None else instant(since),
        "until": None if until is None else instant(until),
    }
    return Call(
        "GET",
        f"/api/memory/search/{seg(user_id)}",
        _json(m.SearchResult.from_json),
        params,
        idempotent=True,
    )


# ---------------------------------------------------------------------------- browse


def list_short_term(user_id: str, limit: int | None, offset: int | None) -> Call[m.Page[m.Turn]]:
    """``GET /api/memory/short-term/{user_id}``."""
    return Call(
        "GET",
        f"/api/memory/short-term/{seg(user_id)}",
        _page("turns", m.Turn.from_json),
        _page_params(limit, offset),
        idempotent=True,
    )


def list_episodic(user_id: str, limit: int | None, offset: int | None) -> Call[m.Page[m.Episode]]:
    """``GET /api/memory/episodic/{user_id}``."""
    return Call(
        "GET",
        f"/api/memory/episodic/{seg(user_id)}",
        _page("episodes", m.Episode.from_json),
        _page_params(limit, offset),
        idempotent=True,
    )


def list_semantic(user_id: str, limit: int | None, offset: int | None) -> Call[m.SemanticPage]:
    """``GET /api/memory/semantic/{user_id}``."""
    return Call(
        "GET",
        f"/api/memory/semantic/{seg(user_id)}",
        _json(m.SemanticPage.from_json),
        _page_params(limit, offset),
        idempotent=True,
    )


def list_procedural(
    user_id: str, limit: int | None, offset: int | None, include_superseded: bool | None
) -> Call[m.Page[m.Rule]]:
    """``GET /api/memory/procedural/{user_id}``."""
    params = {**_page_params(limit, offset), "include_superseded": include_superseded}
    return Call(
        "GET",
        f"/api/memory/procedural/{seg(user_id)}",
        _page("rules", m.Rule.from_json),
        params,
        idempotent=True,
    )


def list_edits(user_id: str, limit: int | None, offset: int | None) -> Call[m.Page[m.Edit]]:
    """``GET /api/memory/edits/{user_id}``."""
    return Call(
        "GET",
        f"/api/memory/edits/{seg(user_id)}",
        _page("edits", m.Edit.from_json),
        _page_params(limit, offset),
        idempotent=True,
    )


def user_stats(user_id: str) -> Call[m.UserStats]:
    """``GET /api/memory/stats/{user_id}``."""
    return Call(
        "GET", f"/api/memory/stats/{seg(user_id)}", _json(m.UserStats.from_json), idempotent=True
    )



def list_users(q: str | None, limit: int | None, offset: int | None) -> Call[m.UserPage]:
    """``GET /api/users`` (admin key)."""
    return Call(
        "GET",
        "/api/users",
        _json(m.UserPage.from_json),
        {"q": q, **_page_params(limit, offset)},
        idempotent=True,
    )


def me() -> Call[m.Access]:
    """``GET /api/me``."""
    return Call("GET", "/api/me", _json(m.Access.from_json), idempotent=True)


def find_turn(user_id: str, evidence: str | None, job_id: str | None) -> Call[m.TurnLookup]:
    """``GET /api/memory/turn/{user_id}`` by ``evidence`` or by ``job_id``."""
    return Call(
        "GET",
        f"/api/memory/turn/{seg(user_id)}",
        _json(m.TurnLookup.from_json),
        {"evidence": evidence, "job_id": job_id},
        idempotent=True,
    )


def forget_user(user_id: str) -> Call[m.Forgotten]:
    """``DELETE /api/memory/user/{user_id}``."""
    return Call("DELETE", f"/api/memory/user/{seg(user_id)}", _json(m.Forgotten.from_json))


# ----------------------------------------------------------------------------- edits


def add_episode(
    user_id: str,
    text: str,
    occurred_at: Instant | None,
    importance: float | None,
    tags: Sequence[str] | None,
    speaker: str | None,
) -> Call[m.Episode]:
    """``POST /api/memory/episodic/{user_id}``."""
    body = _drop_none(
        {
            "text": text,
            "occurred_at": None if occurred_at is None else instant(occurred_at),
            "importance": importance,
            "tags": None if tags is None else list(tags),
            "speaker": speaker,
        }
    )
    return Call(
        "POST", f"/api/memory/episodic/{seg(user_id)}", _json(m.Episode.from_json), json=body
    )


def update_episode(
    user_id: str,
    episode_id: int,
    text: str | None,
    importance: float | None,
    tags: Sequence[str] | None,
) -> Call[m.Episode]:
    """``PATCH /api/memory/episodic/{user_id}/{id}``."""
    body = _drop_none(
        {"text": text, "importance": importance, "tags": None if tags is None else list(tags)}
    )
    return Call(
        "PATCH",
        f"/api/memory/episodic/{seg(user_id)}/{seg(episode_id)}",
        _json(m.Episode.from_json),
        json=body,
    )


def delete_episode(user_id: str, episode_id: int) -> Call[m.Episode]:
    """``DELETE /api/memory/episodic/{user_id}/{id}``."""
    return Call(
        "DELETE",
        f"/api/memory/episodic/{seg(user_id)}/{seg(episode_id)}",
        _deleted(m.Episode.from_json),
    )


def add_fact(
    user_id: str,
    subject: str,
    predicate: str,
    object: str,
    fact: str | None,
    valid_at: Instant | None,
    exclusive: bool | None,
) -> Call[m.Fact]:
    """``POST /api/memory/semantic/{user_id}``."""
    body = _drop_none(
        {
            "subject": subject,
            "predicate": predicate,
            "object": object,
            "fact": fact,
            "valid_at": None if valid_at is None else instant(valid_at),
            "exclusive": exclusive,
        }
    )
    return Call("POST", f"/api/memory/semantic/{seg(user_id)}", _json(m.Fact.from_json), json=body)


def update_fact(user_id: str, fact_id: int, fact: str | None, object: str | None) -> Call[m.Fact]:
    """``PATCH /api/memory/semantic/{user_id}/{id}``."""
    return Call(
        "PATCH",
        f"/api/memory/semantic/{seg(user_id)}/{seg(fact_id)}",
        _json(m.Fact.from_json),
        json=_drop_none({"fact": fact, "object": object}),
    )


def delete_fact(user_id: str, fact_id: int) -> Call[m.Fact]:
    """``DELETE /api/memory/semantic/{user_id}/{id}``."""
    return Call(
        "DELETE", f"/api/memory/semantic/{seg(user_id)}/{seg(fact_id)}", _deleted(m.Fact.from_json)
    )


def add_rule(user_id: str, statement: str, kind: str, topic: str | None) -> Call[m.Rule]:
    """``POST /api/memory/procedural/{user_id}``."""
    body = _drop_none({"statement": statement, "kind": kind, "topic": topic})
    return Call(
        "POST", f"/api/memory/procedural/{seg(user_id)}", _json(m.Rule.from_json), json=body
    )


def update_rule(
    user_id: str, rule_id: int, statement: str | None, kind: str | None
) -> Call[m.Rule]:
    """``PATCH /api/memory/procedural/{user_id}/{id}``."""
    return Call(
        "PATCH",
        f"/api/memory/procedural/{seg(user_id)}/{seg(rule_id)}",
        _json(m.Rule.from_json),
        json=_drop_none({"statement": statement, "kind": kind}),
    )


def delete_rule(user_id: str, rule_id: int) -> Call[m.Rule]:
    """``DELETE /api/memory/procedural/{user_id}/{id}``."""
    return Call(
        "DELETE",
        f"/api/memory/procedural/{seg(user_id)}/{seg(rule_id)}",
        _deleted(m.Rule.from_json),
    )


# ------------------------------------------------------------------------ reflection


def get_job(job_id: str) -> Call[m.Job]:
    """``GET /api/reflection/jobs/{job_id}``."""
    return Call(
        "GET", f"/api/reflection/jobs/{seg(job_id)}", _json(m.Job.from_json), idempotent=True
    )


def list_dead_letters(limit: int | None, offset: int | None) -> Call[m.DeadLetters]:
    """``GET /api/reflection/dlq``."""
    return Call(
        "GET",
        "/api/reflection/dlq",
        _json(m.DeadLetters.from_json),
        _page_params(limit, offset),
        idempotent=True,
    )


def replay_dead_letters(job_ids: Sequence[str] | None) -> Call[m.Replayed]:
    """``POST /api/reflection/dlq/replay`` (``None``: every dead job)."""
    body: dict[str, Any] = {"all": True} if job_ids is None else {"job_ids": list(job_ids)}
    return Call("POST", "/api/reflection/dlq/replay", _json(m.Replayed.from_json), json=body)


def purge_dead_letters() -> Call[m.Purged]:
    """``POST /api/reflection/dlq/purge``."""
    return Call("POST", "/api/reflection/dlq/purge", _json(m.Purged.from_json))


def health() -> Call[m.Health]:
    """``GET /api/reflection/health`` (its 503 answer is a report too)."""
    return Call(
        "GET",
        "/api/reflection/health",
        _json(m.Health.from_json),
        idempotent=True,
        ok_statuses=frozenset({503}),
    )


def reflection_stats() -> Call[m.ReflectionStats]:
    """``GET /api/reflection/stats``."""
    return Call("GET", "/api/reflection/stats", _json(m.ReflectionStats.from_json), idempotent=True)


def queue_status() -> Call[m.QueueStatus]:
    """``GET /api/reflection/queue-status``."""
    return Call(
        "GET", "/api/reflection/queue-status", _json(m.QueueStatus.from_json), idempotent=True
    )


def metrics() -> Call[str]:
    """``GET /metrics`` (Prometheus text)."""
    return Call("GET", "/metrics", _text, idempotent=True)


# -------------------------------------------------------------------------- polling


def next_poll(interval: float) -> float:
    """The next polling interval of ``wait_for_job``: 1.5 times longer, at most 1 s."""
    return min(1.0, interval * 1.5)


_TIERS: dict[str, tuple[str, str, Callable[[Mapping[str, Any]], Any]]] = {
    "short_term": ("short-term", "turns", m.Turn.from_json),
    "episodic": ("episodic", "episodes", m.Episode.from_json),
    "semantic": ("semantic", "facts", m.Fact.from_json),
    "procedural": ("procedural", "rules", m.Rule.from_json),
}


def tier_items(
    user_id: str, tier: str, limit: int, offset: int, include_superseded: bool | None
) -> Call[list[Any]]:
    """One page of a tier's items (turns, episodes, facts or rules), for ``iter_tier``."""
    try:
        route, key, item = _TIERS[tier.replace("-", "_")]
    except KeyError:
        raise ValueError(f"unknown tier {tier!r}; use one of {', '.join(_TIERS)}") from None
    params: dict[str, int | bool | None] = {"limit": limit, "offset": offset}
    if route == "procedural":
        params["include_superseded"] = include_superseded
    return Call(
        "GET",
        f"/api/memory/{route}/{seg(user_id)}",
        _json(lambda d: [item(x) for x in d.get(key) or []]),
        params,
        idempotent=True,
    )
