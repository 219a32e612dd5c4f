"""The asynchronous client, :class:`AsyncReflectorClient` (asyncio or trio, through httpx)."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Literal, Mapping, Sequence, TypeVar, overload

import anyio
import httpx

from . import _core
from . import models as m
from ._core import Call, Instant
from .errors import JobWaitTimeoutError

T = TypeVar("T")

__all__ = ["AsyncReflectorClient"]


class AsyncReflectorClient:
    """An asynchronous client of the Memory Reflector HTTP API.

    The same methods as :class:`~memory_reflector.ReflectorClient`, as coroutines (and
    ``iter_tier`` as an async iterator), with the same arguments, retries and errors::

        async with AsyncReflectorClient() as client:
            turn = await client.store_turn("ana", "s1", "I moved to Berlin.")
            await client.wait_for_job(turn.reflection_job_id)
            ctx = await client.context("ana", "Where does Ana live?")

    Args:
        base_url: The service (default ``REFLECTOR_URL``, else ``http://127.0.0.1:8080``).
        api_key: Bearer key (default ``REFLECTOR_API_KEY``, else none).
        timeout: Seconds per request, or an ``httpx.Timeout`` (default 10 s).
        max_retries: Resends after 429/503 or a safe-to-retry connection failure (default 2).
        max_retry_wait: The longest ``Retry-After`` honoured by waiting (default 60 s).
        headers: Extra headers sent with every request.
        http_client: An ``httpx.AsyncClient`` to send requests with; not closed by
            :meth:`aclose`.

    Use it as an async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = _core.DEFAULT_MAX_RETRIES,
        max_retry_wait: float = _core.DEFAULT_MAX_RETRY_WAIT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = _core.Settings.make(
            base_url, api_key, timeout, max_retries, max_retry_wait, headers
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()

    @property
    def base_url(self) -> str:
        """The service's base URL, without a trailing slash."""
        return self._settings.base_url

    async def aclose(self) -> None:
        """Close the client's connections (not those of an ``http_client`` given to it)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncReflectorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncReflectorClient(base_url={self.base_url!r})"

    async def _send(self, call: Call[T]) -> T:
        settings = self._settings
        attempt = 0
        while True:
            try:
                response = await self._http.request(**settings.request_args(call))
            except httpx.TransportError as exc:
                delay = settings.delay_after_error(call, exc, attempt)
                if delay is None:
                    raise _core.transport_error(exc, call) from exc
            else:
                if response.status_code in call.ok_statuses:
                    return _core.result(call, response)
                delay = settings.delay_after_answer(response, attempt)
                if delay is None:
                    return _core.result(call, response)
            attempt += 1
            await anyio.sleep(delay)

    # ------------------------------------------------------------------------- turns

    async def store_turn(
        self,
        user_id: str,
        session_id: str,
        user_message: str,
        assistant_response: str | None = None,
        *,
        timestamp: Instant | None = None,
        metadata: Mapping[str, Any] | None = None,
        interaction_id: str | None = None,
    ) -> m.StoredTurn:
        """Store one turn of a conversation; the service reflects it into long-term memory.

        Args:
            user_id: The user (1 to 256 bytes, no control characters).
            session_id: The conversation.
            user_message: What the user said; not blank.
            assistant_response: What the assistant answered (may be empty).
            timestamp: When the turn happened (default: now, by the service's clock).
                Relative dates in the message ("yesterday") are resolved against it. A
                naive datetime or a string without a zone means UTC.
            metadata: ``speaker`` (who "I" is), ``timezone`` (IANA name or UTC offset),
                ``dia_id`` (evidence id), ``image_caption``; other keys are kept.
            interaction_id: Idempotency key, unique across the service (prefix it with your
                own ids). Default: a new uuid4, so that a retried request stores the turn
                once. Resending the same body with the same id returns the same job;
                another body with the same id raises ``ConflictError``.

        Returns:
            The stored turn, with ``reflection_job_id`` for :meth:`wait_for_job`.

        Raises:
            RateLimitError: The user's (or the service's) reflection backlog is at its
                ceiling and the retries ran out; the turn was not stored.
            ValidationError: A field is invalid (``err.field`` names it).
        """
        return await self._send(
            _core.store_turn(
                user_id,
                session_id,
                user_message,
                assistant_response,
                timestamp,
                metadata,
                interaction_id,
            )
        )

    async def store_interaction(self, user_id: str, interaction: Mapping[str, Any]) -> m.StoredTurn:
        """Store a turn given as the original Python service's interaction dict.

        The dict has ``session_id`` and ``user_message`` (required), ``assistant_response``,
        ``timestamp`` (string, ``date`` or ``datetime``), ``metadata`` and optionally
        ``interaction_id``; see :meth:`store_turn`.

        Raises:
            TypeError: A required key is missing, or a key is unknown.
        """
        return await self._send(_core.store_interaction(user_id, interaction))

    async def get_job(self, job_id: str) -> m.Job:
        """A reflection job: state, attempts, each tier's result or error.

        Raises:
            NotFoundError: No such job.
        """
        return await self._send(_core.get_job(job_id))

    async def wait_for_job(
        self, job_id: str, timeout: float = 60.0, *, poll_interval: float = 0.05
    ) -> m.Job:
        """Poll a reflection job until it is ``completed`` or ``dead``, and return it.

        A dead job is returned, not raised: check ``job.state`` (``job.dead_reason`` says
        why). Polling starts every ``poll_interval`` seconds and slows down to once a second.

        Raises:
            JobWaitTimeoutError: The job was still waiting or running after ``timeout`` seconds.
            NotFoundError: No such job.
        """
        deadline = time.monotonic() + timeout
        interval = poll_interval
        while True:
            job = await self.get_job(job_id)
            if job.finished:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobWaitTimeoutError(job_id, job.state, timeout)
            await anyio.sleep(min(interval, left))
            interval = _core.next_poll(interval)

    # ------------------------------------------------------------------------ recall

    async def context(
        self,
        user_id: str,
        query: str | None = None,
        *,
        limit: int | None = None,
        include_invalid: bool | None = None,
        max_tokens: int | None = None,
    ) -> m.Context:
        """Context for the next prompt, from all four tiers.

        Args:
            user_id: The user.
            query: What the next prompt is about (e.g. the user's new message).
            limit: Items in the ranked ``memories`` list, 1 to 100 (service default 10).
            include_invalid: Also facts that no longer hold.
            max_tokens: Trim ``context`` to fit this many estimated tokens, highest-ranked
                first (the lists are not trimmed).
        """
        return await self._send(_core.context(user_id, query, limit, include_invalid, max_tokens))

    async def search(
        self,
        user_id: str,
        query: str,
        *,
        limit: int | None = None,
        tier: str | Sequence[str] | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
    ) -> m.SearchResult:
        """Search a user's memories: ranked items, best first, optionally filtered.

        Args:
            user_id: The user.
            query: What to look for; not blank.
            limit: Items wanted, 1 to 100 (service default 10).
            tier: Only these tiers: one name or a list of ``short_term``, ``episodic``,
                ``semantic``, ``procedural``.
            since: Only items dated at or after this instant (a date alone: its midnight
                UTC). An item's date is its event (episodes), ``valid_at`` (facts), when
                it was stated (rules) or the turn's timestamp (short-term).
            until: Only items dated before this instant; a date alone includes that day.
        """
        return await self._send(_core.search(user_id, query, limit, tier, since, until))

    # ------------------------------------------------------------------------ browse

    async def list_short_term(
        self, user_id: str, *, limit: int | None = None, offset: int | None = None
    ) -> m.Page[m.Turn]:
        """A page of the user's short-term turns (Tier 1), newest first.

        ``limit`` is 1 to 500 (service default 50).
        """
        return await self._send(_core.list_short_term(user_id, limit, offset))

    async def list_episodic(
        self, user_id: str, *, limit: int | None = None, offset: int | None = None
    ) -> m.Page[m.Episode]:
        """A page of the user's episodes (Tier 2), newest first.

        ``limit`` is 1 to 500 (service default 50).
        """
        return await self._send(_core.list_episodic(user_id, limit, offset))

    async def list_semantic(
        self, user_id: str, *, limit: int | None = None, offset: int | None = None
    ) -> m.SemanticPage:
        """A page of the user's knowledge graph (Tier 3): entities and facts.

        Both lists are paged by the same ``limit`` (1 to 500, service default 50) and
        ``offset``.
        """
        return await self._send(_core.list_semantic(user_id, limit, offset))

    async def list_procedural(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        include_superseded: bool | None = None,
    ) -> m.Page[m.Rule]:
        """A page of the user's rules (Tier 4), newest first.

        Superseded rules only with ``include_superseded=True``; ``limit`` is 1 to 500
        (service default 50).
        """
        return await self._send(_core.list_procedural(user_id, limit, offset, include_superseded))

    @overload
    def iter_tier(
        self,
        user_id: str,
        tier: Literal["short_term"],
        *,
        page_size: int = ...,
        include_superseded: bool | None = ...,
    ) -> AsyncIterator[m.Turn]: ...
    @overload
    def iter_tier(
        self,
        user_id: str,
        tier: Literal["episodic"],
        *,
        page_size: int = ...,
        include_superseded: bool | None = ...,
    ) -> AsyncIterator[m.Episode]: ...
    @overload
    def iter_tier(
        self,
        user_id: str,
        tier: Literal["semantic"],
        *,
        page_size: int = ...,
        include_superseded: bool | None = ...,
    ) -> AsyncIterator[m.Fact]: ...
    @overload
    def iter_tier(
        self,
        user_id: str,
        tier: Literal["procedural"],
        *,
        page_size: int = ...,
        include_superseded: bool | None = ...,
    ) -> AsyncIterator[m.Rule]: ...
    @overload
    def iter_tier(
        self,
        user_id: str,
        tier: str,
        *,
        page_size: int = ...,
        include_superseded: bool | None = ...,
    ) -> AsyncIterator[Any]: ...

    async def iter_tier(
        self,
        user_id: str,
        tier: str,
        *,
        page_size: int = 100,
        include_superseded: bool | None = None,
    ) -> AsyncIterator[Any]:
        """Every item of one tier, newest first, fetched a page at a time.

        Yields turns (``short_term``), episodes (``episodic``), facts (``semantic``) or
        rules (``procedural``; superseded ones with ``include_superseded=True``). Paging is
        by offset: items added while iterating shift the pages, so an item may be seen twice.

        Args:
            user_id: The user.
            tier: ``short_term``, ``episodic``, ``semantic`` or ``procedural``.
            page_size: Items per request, 1 to 500.
            include_superseded: Procedural only: also rules that were superseded.
        """
        offset = 0
        while True:
            items = await self._send(
                _core.tier_items(user_id, tier, page_size, offset, include_superseded)
            )
            for item in items:
                yield item
            if len(items) < page_size:
                return
            offset += len(items)

    async def list_edits(
        self, user_id: str, *, limit: int | None = None, offset: int | None = None
    ) -> m.Page[m.Edit]:
        """A page of the user's audit record of memory edits, newest first."""
        return await self._send(_core.list_edits(user_id, limit, offset))

    async def user_stats(self, user_id: str) -> m.UserStats:
        """Rows per tier and reflection jobs by state for one user."""
        return await self._send(_core.user_stats(user_id))

    async def list_users(
        self, q: str | None = None, *, limit: int | None = None, offset: int | None = None
    ) -> m.UserPage:
        """Every user with counts per tier, jobs waiting and dead, and last activity, by
        user id; ``q`` keeps the ids containing it (any case). Admin key.

        Raises:
            PermissionDeniedError: The key is limited to some users.
        """
        return await self._send(_core.list_users(q, limit, offset))

    async def me(self) -> m.Access:
        """Which users this client's API key may see."""
        return await self._send(_core.me())

    async def find_turn(
        self, user_id: str, *, evidence: str | None = None, job_id: str | None = None
    ) -> m.TurnLookup:
        """The turn a memory came from, by one of its evidence ids (an interaction id or a
        LoCoMo ``dia_id``) or by its job id; give exactly one of the two.

        Raises:
            NotFoundError: Nothing of this user has that id.
            ValidationError: Neither or both of ``evidence`` and ``job_id`` given.
        """
        return await self._send(_core.find_turn(user_id, evidence, job_id))

    async def forget_user(self, user_id: str) -> m.Forgotten:
        """Forget a user: every tier, their turns, jobs and edit records. Irreversible."""
        return await self._send(_core.forget_user(user_id))

    # ------------------------------------------------------------------------- edits

    async def add_episode(
        self,
        user_id: str,
        text: str,
        *,
        occurred_at: Instant | None = None,
        importance: float | None = None,
        tags: Sequence[str] | None = None,
        speaker: str | None = None,
    ) -> m.Episode:
        """Remember something explicitly as an episode ("remember that …").

        Args:
            user_id: The user.
            text: The memory, at most 10,000 bytes.
            occurred_at: When it happened (default now).
            importance: 0 to 1 (default 0.5).
            tags: At most 50 tags.
            speaker: Who said it (default the user id).
        """
        return await self._send(
            _core.add_episode(user_id, text, occurred_at, importance, tags, speaker)
        )

    async def update_episode(
        self,
        user_id: str,
        episode_id: int,
        *,
        text: str | None = None,
        importance: float | None = None,
        tags: Sequence[str] | None = None,
    ) -> m.Episode:
        """Change an episode (at least one field); re-reflection will not undo it.

        Raises:
            NotFoundError: No such episode of this user.
        """
        return await self._send(_core.update_episode(user_id, episode_id, text, importance, tags))

    async def delete_episode(self, user_id: str, episode_id: int) -> m.Episode:
        """Delete an episode; returns it as it was. Re-reflection will not bring it back."""
        return await self._send(_core.delete_episode(user_id, episode_id))

    async def add_fact(
        self,
        user_id: str,
        subject: str,
        predicate: str,
        object: str,
        *,
        fact: str | None = None,
        valid_at: Instant | None = None,
        exclusive: bool | None = None,
    ) -> m.Fact:
        """Add a fact ``subject PREDICATE object`` to the knowledge graph.

        Args:
            user_id: The user.
            subject: Who or what the fact is about.
            predicate: Letters, spaces and ``_``; stored upper case (``works at`` becomes
                ``WORKS_AT``).
            object: The value.
            fact: The fact as a sentence (default "subject predicate object."); it must not
                state another relation than ``predicate`` (``ValidationError`` naming
                ``fact``).
            valid_at: Valid from (default now).
            exclusive: One value at a time, like ``LIVES_IN`` (default: as the slot's
                existing facts, else false).

        Raises:
            ConflictError: The fact duplicates another.
        """
        return await self._send(
            _core.add_fact(user_id, subject, predicate, object, fact, valid_at, exclusive)
        )

    async def update_fact(
        self, user_id: str, fact_id: int, *, fact: str | None = None, object: str | None = None
    ) -> m.Fact:
        """Change a fact's sentence and/or object (at least one).

        Raises:
            NotFoundError: No such fact of this user.
            ValidationError: ``fact`` states another relation than the fact's predicate.
        """
        return await self._send(_core.update_fact(user_id, fact_id, fact, object))

    async def delete_fact(self, user_id: str, fact_id: int) -> m.Fact:
        """Delete a fact; returns it as it was. Re-reflection will not bring it back."""
        return await self._send(_core.delete_fact(user_id, fact_id))

    async def add_rule(
        self, user_id: str, statement: str, kind: m.RuleKind, *, topic: str | None = None
    ) -> m.Rule:
        """Add a rule: a ``preference``, ``instruction`` or ``constraint``.

        Args:
            user_id: The user.
            statement: The rule ("Answer in French.").
            kind: ``preference``, ``instruction`` or ``constraint``.
            topic: The newest rule of a topic supersedes the others (``language``,
                ``diet``…; default the statement).
        """
        return await self._send(_core.add_rule(user_id, statement, kind, topic))

    async def update_rule(
        self,
        user_id: str,
        rule_id: int,
        *,
        statement: str | None = None,
        kind: m.RuleKind | None = None,
    ) -> m.Rule:
        """Change a rule's statement and/or kind (at least one).

        Raises:
            NotFoundError: No such rule of this user.
        """
        return await self._send(_core.update_rule(user_id, rule_id, statement, kind))

    async def delete_rule(self, user_id: str, rule_id: int) -> m.Rule:
        """Delete a rule; returns it as it was. Re-reflection will not bring it back."""
        return await self._send(_core.delete_rule(user_id, rule_id))

    # -------------------------------------------------------------------- operations

    async def list_dead_letters(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> m.DeadLetters:
        """Dead reflection jobs with their reasons, newest first (admin key)."""
        return await self._send(_core.list_dead_letters(limit, offset))

    async def replay_dead_letters(self, job_ids: Sequence[str]) -> m.Replayed:
        """Put these dead jobs back in the queue; only their failed tiers run again (admin).

        Raises:
            NotFoundError: None of the ids is a dead job.
        """
        return await self._send(_core.replay_dead_letters(job_ids))

    async def replay_all_dead_letters(self) -> m.Replayed:
        """Put every dead job back in the queue (admin key)."""
        return await self._send(_core.replay_dead_letters(None))

    async def purge_dead_letters(self) -> m.Purged:
        """Empty the broker's dead-letter queue (RabbitMQ only; dead job rows stay).

        Raises:
            BadRequestError: The service uses the embedded queue.
        """
        return await self._send(_core.purge_dead_letters())

    async def health(self) -> m.Health:
        """The service's health (public: needs no key).

        An unhealthy service (503) is returned as ``Health(status="unhealthy")``, not raised.
        """
        return await self._send(_core.health())

    async def reflection_stats(self) -> m.ReflectionStats:
        """Service-wide reflection statistics: jobs by state, rate, tier latencies (admin)."""
        return await self._send(_core.reflection_stats())

    async def queue_status(self) -> m.QueueStatus:
        """The reflection queue: waiting jobs, ages, backpressure ceilings (admin key)."""
        return await self._send(_core.queue_status())

    async def metrics(self) -> str:
        """The service's Prometheus metrics, as text (admin key)."""
        return await self._send(_core.metrics())
