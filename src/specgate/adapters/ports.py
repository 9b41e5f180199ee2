"""The document-store port: what handlers and domain code may ask of storage, in neutral terms.

Two adapters implement it: ``sqlite`` (embedded default) and ``mongo`` (production, PyMongo async).
Handlers never build backend queries; they pass the small filter vocabulary below.

Rules every adapter keeps, chosen so that MongoDB and the embedded store behave the same:

- A document is a JSON-compatible dict with a string ``id`` and a string ``company``; the store adds
  an integer ``rev`` (1 on insert, +1 on every replace). Time values are ISO-8601 UTC strings of fixed
  width (``specgate.core.clock.now_iso``), so they sort and compare identically everywhere.
- ``None`` is never stored: null-valued keys are dropped on write, so "absent" has one form.
- Writes are whole documents: ``insert``, and ``replace`` as a compare-and-swap on ``rev``. A
  read-modify-write that loses the race gets ``None`` back and decides whether to retry. No
  transactions are used (the MongoDB test server has none, and none are needed).
- Tenancy is not optional: every read and write names the companies it may touch. Public objects
  belong to company ``""``; reads that allow them pass ``(company, "")``.
- Filters follow MongoDB's array semantics: on an array field, ``Eq`` means "contains", ``In`` means
  "any element in", ``NotIn`` means "no element in", ``All`` means "contains every one".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, Union

Document = dict[str, Any]


class StoreError(Exception):
    """Base of storage failures that handlers may see."""


class DuplicateKey(StoreError):
    """An insert or replace would break a unique index (or reuse an id)."""

    def __init__(self, collection: str, fields: Sequence[str]):
        self.collection, self.fields = collection, tuple(fields)
        super().__init__(f"duplicate value in {collection} for unique fields {', '.join(fields)}")


class StoreUnavailable(StoreError):
    """The backend cannot be reached right now; the caller may retry later."""


# --- filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eq:
    field: str
    value: Any


@dataclass(frozen=True)
class In:
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class NotIn:
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class All:
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """Bounds on a scalar field; None means unbounded on that side."""

    field: str
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None


@dataclass(frozen=True)
class Regex:
    """Python ``re`` syntax, searched (not anchored) in a string field."""

    field: str
    pattern: str
    ignore_case: bool = False


@dataclass(frozen=True)
class Exists:
    field: str
    present: bool = True


@dataclass(frozen=True)
class Empty:
    """The field is missing, ``""`` or ``[]`` (what a ``null`` value in a list filter asks for)."""

    field: str


@dataclass(frozen=True)
class And:
    items: tuple["Filter", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["Filter", ...]


Filter = Union[Eq, In, NotIn, All, Range, Regex, Exists, Empty, And, Or]


@dataclass(frozen=True)
class Index:
    """An index the queries need; ``unique`` indexes ignore documents missing a field (sparse).

    ``filter_only`` declares a field that filters test but that no query seeks or sorts by, typically
    an array of a few distinct values (``system_tags``: hidden, archived). MongoDB gets no index for
    it (a multikey index does not serve ``$nin``); the embedded store carries it inside its other
    indexes, so such a test no longer reads each scanned document."""

    fields: tuple[str, ...]
    unique: bool = False
    filter_only: bool = False


# --- the port ----------------------------------------------------------------------------------


class DocumentStore(Protocol):
    async def open(self) -> None:
        """Connect and prepare; safe to call once per process."""

    async def close(self) -> None: ...

    async def ensure_indexes(self, collection: str, indexes: Sequence[Index]) -> None: ...

    async def insert(self, collection: str, doc: Document) -> Document:
        """Store a new document (``rev`` becomes 1) and return it; DuplicateKey on a clash."""

    async def get(
        self, collection: str, id: str, *, companies: Sequence[str], fields: Sequence[str] | None = None
    ) -> Document | None:
        """One document by id among ``companies``; ``fields`` limits top-level keys (id always kept)."""

    async def find(
        self,
        collection: str,
        *,
        companies: Sequence[str],
        where: Filter | None = None,
        order: Sequence[tuple[str, bool]] = (),
        skip: int = 0,
        limit: int | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[Document]:
        """Matching documents; ``order`` is (field, descending) pairs, then ``id`` as a tie-breaker
        in the direction of the last pair (ascending without one), so one index serves both ways."""

    async def count(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int: ...

    async def distinct(
        self, collection: str, field: str, *, companies: Sequence[str], where: Filter | None = None
    ) -> list[Any]:
        """Distinct values of a scalar or array-of-scalars field, sorted; arrays contribute elements."""

    async def replace(self, collection: str, doc: Document, *, expected_rev: int) -> Document | None:
        """Compare-and-swap: store ``doc`` (same id and company) if the stored ``rev`` is still
        ``expected_rev``; return it with ``rev`` + 1, or None when it changed or vanished meanwhile."""

    async def delete(self, collection: str, id: str, *, companies: Sequence[str], expected_rev: int | None = None) -> bool: ...

    async def delete_many(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int: ...


# --- queues ------------------------------------------------------------------------------------


class QueueUnavailable(StoreUnavailable):
    """The queue backend (Redis) cannot be reached right now."""


class QueueBackend(Protocol):
    """Ordered, duplicate-free task queues with atomic head pops (contents only; metadata is in the
    document store). Entries are (task id, added time as ISO string)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def push(self, queue: str, task: str, added: str) -> bool:
        """Append at the tail; False (and no change) when the task is already in this queue."""

    async def pop(self, queue: str, expected: str | None = None) -> tuple[str, str] | None:
        """Remove and return the head atomically; with ``expected``, only if that task is the head."""

    async def remove(self, queue: str, task: str) -> bool: ...

    async def entries(self, queue: str, limit: int | None = None) -> list[tuple[str, str]]: ...

    async def length(self, queue: str) -> int: ...

    async def move(self, queue: str, task: str, position: int) -> int | None:
        """Move a task to ``position`` (clamped; negative counts from the back); its new position,
        or None when it is not in the queue."""

    async def position(self, queue: str, task: str) -> int | None: ...

    async def clear(self, queue: str) -> list[str]:
        """Empty the queue; the task ids it held, in order."""

    async def popped(self, queue: str) -> set[str]:
        """Tasks whose entry was popped (delivered) and that were not queued again since."""

    async def forget_popped(self, queue: str, tasks: list[str]) -> None: ...
