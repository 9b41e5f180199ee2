"""The production document store: MongoDB through PyMongo's async client.

Every raw MongoDB construct of the project lives in this module. It uses only the forms that are
right on real MongoDB and on the embedded test server nx-27017 (see shared/docs/mongo-test-server.md):
whole-document writes (``insert_one``; compare-and-swap ``replace_one`` on ``_id`` + ``company`` +
``rev``), top-level projections (nested values are picked in Python), the safe query subset (no
``$not``; regexes as ``{"$regex": str, "$options": "i"}``), counts through ``aggregate`` with
``$match`` + ``$count`` (never ``count_documents``), and unique indexes that ignore documents missing
a field (``partialFilterExpression`` with ``$exists``). No transactions.

A document's ``id`` is stored as ``_id``. Keys are stored escaped (``_encode``): ``%``, ``.``, ``$`` and
NUL become ``%25``, ``%2E``, ``%24`` and ``%00``, so that clients' free-form maps (hyper-parameter and
configuration names, ``runtime``, ``container``, metadata) store any key on any MongoDB. A document
with an escaped key carries the mark ``_MARK``, and only marked documents are decoded on the way out
(the walk was a tenth of a ``get``).
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any, Iterable, Sequence

from bson.codec_options import TypeDecoder, TypeRegistry
from bson.int64 import Int64
from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError, ConnectionFailure, DuplicateKeyError, OperationFailure

from specgate.adapters.documents import distinct_sorted, path_values, prepare
from specgate.adapters.ports import (
    All,
    And,
    Document,
    DuplicateKey,
    Eq,
    Exists,
    Filter,
    In,
    Index,
    NotIn,
    Or,
    Range,
    Regex,
    StoreUnavailable,
)

__all__ = ["MongoStore"]

_NOTHING: dict[str, Any] = {"_id": {"$in": []}}  # matches no document ($or: [] is an error)
_DEFAULT_DATABASE = "specgate"
_SCALARS = (str, int, float, bool)


_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24", "\x00": "%00"}
_ESCAPE = str.maketrans(_ESCAPES)
_ESCAPED = re.compile("%(?:25|2E|24|00)")
_UNESCAPE = {code: char for char, code in _ESCAPES.items()}
_MARK = "%"
"""A top-level key set on stored documents in which some key was escaped. No document's own key is
stored as a bare ``%`` (it would be ``%25``), so the mark never clashes with one."""


def _encode(value: Any, escaped: list[str]) -> Any:
    """``value`` with every object key escaped. MongoDB reads a dotted key as a path, refuses ``$``-prefixed
    keys before 5.0 (and in places after), gives ``{"$ref": …, "$id": …}`` back as a DBRef, and BSON keys
    cannot hold NUL; keys without those characters (and ``%``) are stored as they are. Identifiers hold
    none of them, and ``isidentifier`` costs a tenth of ``translate``: most keys skip it."""
    kind = type(value)
    if kind is dict:
        return {
            (k if k.isidentifier() else _escape(k, escaped)): _encode(v, escaped) if type(v) in _CONTAINERS else v
            for k, v in value.items()
        }
    if kind is list:
        return [_encode(v, escaped) if type(v) in _CONTAINERS else v for v in value]
    return value


def _escape(key: str, escaped: list[str]) -> str:
    stored = key.translate(_ESCAPE)
    if stored != key:
        escaped.append(key)
    return stored


def _decode(value: Any) -> Any:
    """The inverse of ``_encode``."""
    kind = type(value)
    if kind is dict:
        return {
            (_ESCAPED.sub(lambda m: _UNESCAPE[m[0]], k) if "%" in k else k): _decode(v) if type(v) in _CONTAINERS else v
            for k, v in value.items()
        }
    if kind is list:
        return [_decode(v) if type(v) in _CONTAINERS else v for v in value]
    return value


_CONTAINERS = (dict, list)


def _field(field: str) -> str:
    """The MongoDB path for a port field name: ``id`` is ``_id``; segments may not start with ``$``, and
    are escaped as stored keys are."""
    if not isinstance(field, str) or not field:
        raise ValueError(f"bad field name {field!r}")
    segments = field.split(".")
    for segment in segments:
        if not segment or segment.startswith("$") or "\x00" in segment:
            raise ValueError(f"bad field name {field!r}")
    return "_id" if field == "id" else ".".join(segment.translate(_ESCAPE) for segment in segments)


def _to_mongo(doc: Document) -> Document:
    body, escaped = {"_id": doc["id"]}, []
    body.update(_encode({k: v for k, v in doc.items() if k != "id"}, escaped))
    if escaped:
        body[_MARK] = True
    return body


def _from_mongo(raw: Document, fields: Sequence[str] | None = None) -> Document:
    """A stored document as the port hands it out; ``raw`` (fresh from the driver) is taken apart."""
    doc = {"id": raw.pop("_id")}
    stored = _decode(raw) if raw.pop(_MARK, False) else raw
    if fields is None:
        doc.update(stored)
    else:
        doc.update((f, stored[f]) for f in fields if f != "id" and f in stored)
    return doc


def _projection(fields: Sequence[str] | None) -> dict[str, int] | None:
    if fields is None:
        return None
    for field in fields:
        if "." in field:
            raise ValueError(f"projections name top-level fields only, not {field!r}")
    return {"_id": 1, _MARK: 1, **{_field(f): 1 for f in fields if f != "id"}}


def _scalars(values: Iterable[Any]) -> list[Any]:
    out = list(values)
    for value in out:
        if not isinstance(value, _SCALARS):
            raise TypeError(f"filters compare scalar values only, not {value!r}")
    return out


def _query(f: Filter) -> dict[str, Any]:
    """A port filter as a query in the subset that MongoDB and nx-27017 agree on."""
    if isinstance(f, Eq):
        if f.value is None:
            return {_field(f.field): {"$exists": False}}
        return {_field(f.field): _scalars((f.value,))[0]}
    if isinstance(f, In):
        present = _scalars(v for v in f.values if v is not None)
        query = {_field(f.field): {"$in": present}}
        if len(present) != len(f.values):
            query = {"$or": [query, {_field(f.field): {"$exists": False}}]} if present else {_field(f.field): {"$exists": False}}
        return query
    if isinstance(f, NotIn):
        present = _scalars(v for v in f.values if v is not None)
        condition: dict[str, Any] = {"$nin": present}
        if len(present) != len(f.values):
            condition["$exists"] = True
        return {_field(f.field): condition}
    if isinstance(f, All):
        if not f.values:
            return dict(_NOTHING)
        return {_field(f.field): {"$all": _scalars(f.values)}}
    if isinstance(f, Range):
        bounds = {op: v for op, v in (("$gt", f.gt), ("$gte", f.gte), ("$lt", f.lt), ("$lte", f.lte)) if v is not None}
        if not bounds:
            return {}
        _scalars(bounds.values())
        return {_field(f.field): bounds}
    if isinstance(f, Regex):
        re.compile(f.pattern)  # fail early on a bad pattern, as the SQLite adapter does
        condition = {"$regex": f.pattern}
        if f.ignore_case:
            condition["$options"] = "i"
        return {_field(f.field): condition}
    if isinstance(f, Exists):
        return {_field(f.field): {"$exists": bool(f.present)}}
    if isinstance(f, And):
        items = [q for q in (_query(item) for item in f.items) if q]
        if not items:
            return {}
        return items[0] if len(items) == 1 else {"$and": items}
    if isinstance(f, Or):
        if not f.items:
            return dict(_NOTHING)
        items = [_query(item) for item in f.items]
        if any(not q for q in items):
            return {}
        return items[0] if len(items) == 1 else {"$or": items}
    raise TypeError(f"not a filter: {f!r}")


def _scoped(companies: Sequence[str], where: Filter | None, **exact: Any) -> dict[str, Any]:
    """The tenancy scope and ``exact`` matches, AND the filter, as ``{$and: [scope, filter]}``.

    Deliberately not merged into one flat document (the same query to MongoDB): nx-27017 answers
    flat queries through its SQL translation, which misses array elements once the field has an index
    (``{tags: "red"}`` then finds only scalar ``"red"``), misses them in aggregation ``$match``, and
    compares across types; under ``$and`` it evaluates the query itself and gets those right, at
    10-15x the cost (2-4 ms for a page of 50 at 5k documents). Test fidelity wins over the test
    server's speed; real MongoDB plans both forms alike.
    """
    if isinstance(companies, str):
        raise TypeError("companies is a sequence of company ids, not a string")
    query: dict[str, Any] = {**exact, "company": {"$in": list(companies)}}
    if where is None:
        return query
    extra = _query(where)
    return {"$and": [query, extra]} if extra else query


class _Int64AsInt(TypeDecoder):
    """BSON int64 comes back as a plain ``int`` (as from the SQLite adapter), not ``bson.Int64``."""

    bson_type = Int64

    def transform_bson(self, value: Int64) -> int:
        return int(value)


# Server errors that mean "not now" rather than "wrong request" (the codes PyMongo itself retries on):
# host unreachable or not found, network timeout, shutdown in progress, no majority yet, stepped down,
# time limit exceeded, socket error, not primary / interrupted by a replica-set state change.
_UNAVAILABLE_CODES = frozenset({6, 7, 50, 89, 91, 134, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436})

# Client defaults, each used only when the URL does not set it. A call waits at most 3 s for a
# server to talk to (PyMongo's 30 s would hold every call for half a minute while MongoDB is down;
# the SDK retries a 503 anyway), 2 s to connect, and 20 s for an answer from a hung server.
_TIMEOUTS = {"serverSelectionTimeoutMS": 3000, "connectTimeoutMS": 2000, "socketTimeoutMS": 20000}


def _url_options(url: str) -> set[str]:
    """The option names a MongoDB URL sets, lower-cased (without resolving a mongodb+srv host)."""
    query = urllib.parse.urlsplit(url).query
    return {name.lower() for name, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}


def _guarded(method):
    """Connection failures (server selection timeouts, lost connections) and the server's "not now"
    answers (shutting down, stepping down) become StoreUnavailable: a 503 the clients retry."""

    @functools.wraps(method)
    async def wrapper(self: "MongoStore", *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except ConnectionFailure as exc:  # AutoReconnect, ServerSelectionTimeoutError, NetworkTimeout
            raise StoreUnavailable(str(exc)) from exc
        except OperationFailure as exc:
            if exc.code in _UNAVAILABLE_CODES or exc.has_error_label("RetryableWriteError"):
                raise StoreUnavailable(str(exc)) from exc
            raise

    return wrapper


# --- the store ---------------------------------------------------------------------------------


class MongoStore:
    """A ``DocumentStore`` on MongoDB. ``database`` defaults to the URL's database, else ``specgate``;
    ``client_options`` go to ``AsyncMongoClient`` (e.g. ``serverSelectionTimeoutMS``); timeouts
    default to ``_TIMEOUTS`` unless the URL sets them."""

    def __init__(self, url: str, database: str | None = None, **client_options: Any):
        self.url = url
        self.database_name = database
        given = _url_options(url)
        self._options = {
            **{name: value for name, value in _TIMEOUTS.items() if name.lower() not in given},
            "type_registry": TypeRegistry([_Int64AsInt()]),
            **client_options,
        }
        self._client: AsyncMongoClient | None = None
        self._db = None
        self._cols: dict[str, Any] = {}  # PyMongo builds a new collection object per lookup (~8 µs)

    @property
    def client_options(self) -> dict[str, Any]:
        """The ``AsyncMongoClient`` options this store connects with (timeouts, Int64 decoding)."""
        return dict(self._options)

    # lifecycle

    @_guarded
    async def open(self) -> None:
        if self._client is not None:
            return
        client: AsyncMongoClient = AsyncMongoClient(self.url, **self._options)
        try:
            name = self.database_name
            if name is None:
                try:
                    name = client.get_default_database().name
                except ConfigurationError:
                    name = _DEFAULT_DATABASE
            await client.admin.command("ping")
        except BaseException:
            await client.close()
            raise
        self.database_name = name
        self._client, self._db = client, client[name]

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._db = self._client, None, None
            self._cols.clear()
            await client.close()

    async def drop_database(self) -> None:
        """Remove this store's whole database (tests and benchmarks only)."""
        await self._client.drop_database(self.database_name)

    # internals

    def _col(self, collection: str):
        col = self._cols.get(collection) if isinstance(collection, str) else None
        if col is not None:
            return col
        if self._db is None:
            raise RuntimeError("MongoStore is not open")
        if not isinstance(collection, str) or not collection or "$" in collection or collection.startswith("system."):
            raise ValueError(f"bad collection name {collection!r}")
        col = self._db[collection]
        if len(self._cols) < 64:  # the domain's collections are a fixed handful
            self._cols[collection] = col
        return col

    async def _clash(self, collection: str, exc: OperationFailure) -> DuplicateKey:
        """DuplicateKey naming the fields of the unique index that refused the write."""
        details = exc.details or {}
        pattern = details.get("keyPattern")
        if isinstance(pattern, dict) and pattern:
            return DuplicateKey(collection, ["id" if k == "_id" else k for k in pattern])
        message = str(details.get("errmsg") or exc)
        try:
            info = await self._col(collection).index_information()
        except OperationFailure:
            info = {}
        named = [name for name in info if name != "_id_" and name in message]
        if named:
            keys = info[max(named, key=len)]["key"]
            return DuplicateKey(collection, ["id" if k == "_id" else k for k, _ in keys])
        return DuplicateKey(collection, ["id"] if "_id" in message else [])

    # the port

    @_guarded
    async def ensure_indexes(self, collection: str, indexes: Sequence[Index]) -> None:
        col = self._col(collection)
        for index in indexes:
            if not index.fields:
                raise ValueError("an index needs at least one field")
            # A trailing id (the tie-break of an order) is left out: nx-27017, the MongoDB-wire server
            # the adapter is tested on, fails every insert once _id is part of a compound index. Real
            # MongoDB would serve (field, _id) sorts from it; without it, it sorts the matches.
            fields = index.fields[:-1] if len(index.fields) > 1 and index.fields[-1] == "id" and not index.unique else index.fields
            keys = [(_field(f), 1) for f in fields]
            if index.filter_only:
                continue  # see Index: no MongoDB index serves it
            if index.unique:
                partial = {path: {"$exists": True} for path, _ in keys}
                try:
                    await col.create_index(keys, unique=True, partialFilterExpression=partial)
                except OperationFailure as exc:
                    if exc.code == 11000:
                        raise await self._clash(collection, exc) from exc
                    raise
            else:
                await col.create_index(keys)

    @_guarded
    async def insert(self, collection: str, doc: Document) -> Document:
        col = self._col(collection)
        stored = prepare(doc)
        stored["rev"] = 1
        try:
            await col.insert_one(_to_mongo(stored))
        except DuplicateKeyError as exc:
            raise await self._clash(collection, exc) from exc
        return stored

    @_guarded
    async def get(
        self, collection: str, id: str, *, companies: Sequence[str], fields: Sequence[str] | None = None
    ) -> Document | None:
        raw = await self._col(collection).find_one(_scoped(companies, None, _id=id), _projection(fields))
        return None if raw is None else _from_mongo(raw, fields)

    @_guarded
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
        if limit is not None and limit <= 0:
            return []
        sort = [(_field(field), -1 if descending else 1) for field, descending in order]
        if not any(path == "_id" for path, _ in sort):
            sort.append(("_id", sort[-1][1] if sort else 1))  # ties follow the last order term (see the port)
        cursor = self._col(collection).find(_scoped(companies, where), _projection(fields), sort=sort)
        if skip:
            cursor = cursor.skip(int(skip))
        if limit is not None:
            cursor = cursor.limit(int(limit))
        # to_list, not ``async for``: the cursor's ``__anext__`` costs ~3 µs a document (160 µs a page)
        return [_from_mongo(raw, fields) for raw in await cursor.to_list()]

    @_guarded
    async def count(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int:
        cursor = await self._col(collection).aggregate([{"$match": _scoped(companies, where)}, {"$count": "n"}])
        rows = await cursor.to_list()
        return int(rows[0]["n"]) if rows else 0

    @_guarded
    async def distinct(
        self, collection: str, field: str, *, companies: Sequence[str], where: Filter | None = None
    ) -> list[Any]:
        # Not the server's ``distinct``: nx-27017 ignores its query when the query holds ``$in`` (which
        # every tenancy scope does), and returns [] through arrays of sub-documents. A top-level
        # projection with the path walked in Python is right on both.
        segments = _field(field).split(".")
        cursor = self._col(collection).find(_scoped(companies, where), {segments[0]: 1})
        values: list[Any] = []
        async for raw in cursor:
            if segments[0] in raw:
                values.extend(_decode(v) for v in path_values(raw[segments[0]], segments[1:]))
        return distinct_sorted(values)

    @_guarded
    async def replace(self, collection: str, doc: Document, *, expected_rev: int) -> Document | None:
        col = self._col(collection)
        stored = prepare(doc)
        stored["rev"] = int(expected_rev) + 1
        match = {"_id": stored["id"], "company": stored["company"], "rev": int(expected_rev)}
        try:
            result = await col.replace_one(match, _to_mongo(stored))
        except DuplicateKeyError as exc:
            raise await self._clash(collection, exc) from exc
        return stored if result.matched_count == 1 else None

    @_guarded
    async def delete(
        self, collection: str, id: str, *, companies: Sequence[str], expected_rev: int | None = None
    ) -> bool:
        exact: dict[str, Any] = {"_id": id}
        if expected_rev is not None:
            exact["rev"] = int(expected_rev)
        result = await self._col(collection).delete_one(_scoped(companies, None, **exact))
        return result.deleted_count == 1

    @_guarded
    async def delete_many(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int:
        result = await self._col(collection).delete_many(_scoped(companies, where))
        return result.deleted_count
