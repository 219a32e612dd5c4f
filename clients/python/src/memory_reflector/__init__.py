"""Python client of Memory Reflector, a memory service for conversational AI assistants.

::

    from memory_reflector import ReflectorClient

    with ReflectorClient() as client:       # REFLECTOR_URL / REFLECTOR_API_KEY, or arguments
        turn = client.store_turn("ana", "s1", "I moved to Berlin. Always answer in German.")
        client.wait_for_job(turn.reflection_job_id)
        print(client.context("ana", "Where does Ana live?").context)

:class:`ReflectorClient` blocks; :class:`AsyncReflectorClient` has the same methods as
coroutines. Results are the dataclasses of :mod:`memory_reflector.models`; errors are
subclasses of :class:`ReflectorError` (:mod:`memory_reflector.errors`).
"""

from ._version import __version__
from .async_client import AsyncReflectorClient
from .client import ReflectorClient
from .errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    JobWaitTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ReflectorConnectionError,
    ReflectorError,
    ReflectorTimeoutError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from .models import (
    Access,
    Context,
    DeadLetters,
    Edit,
    Entity,
    Episode,
    Fact,
    Forgotten,
    Health,
    Job,
    Page,
    QueueStatus,
    RankedMemory,
    ReflectionStats,
    Replayed,
    Rule,
    ScoredEpisode,
    SearchResult,
    SemanticPage,
    StoredTurn,
    Turn,
    TurnLookup,
    UserPage,
    UserStats,
    UserSummary,
)

__all__ = [
    "Access",
    "AsyncReflectorClient",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "Context",
    "DeadLetters",
    "Edit",
    "Entity",
    "Episode",
    "Fact",
    "Forgotten",
    "Health",
    "Job",
    "JobWaitTimeoutError",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QueueStatus",
    "RankedMemory",
    "RateLimitError",
    "ReflectionStats",
    "ReflectorClient",
    "ReflectorConnectionError",
    "ReflectorError",
    "ReflectorTimeoutError",
    "Replayed",
    "Rule",
    "ScoredEpisode",
    "SearchResult",
    "SemanticPage",
    "ServerError",
    "ServiceUnavailableError",
    "StoredTurn",
    "Turn",
    "TurnLookup",
    "UserPage",
    "UserStats",
    "UserSummary",
    "ValidationError",
    "__version__",
]
