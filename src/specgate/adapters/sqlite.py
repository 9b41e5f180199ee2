"""The embedded document store: one SQLite file, one table per collection, documents as JSON text.

Calls are short and local, so they run directly on the event-loop thread. Several processes may
open the same file (one per gateway worker): WAL mode lets readers and one writer proceed together,
``busy_timeout`` waits out writer contention, and every write is one statement, so the
compare-and-swap in ``replace`` is a single ``UPDATE ... WHERE id=? AND company=? AND rev=?`` and
duplicate detection is left to the PRIMARY KEY and the unique indexes.

Filters compile to SQL over the JSON text with MongoDB's array semantics: a path may hold a scalar or
an array, and dotted paths reach through arrays of sub-documents (``models.input.name``). Values
compare within their type bracket (numbers with numbers, strings with strings, booleans with
booleans), as MongoDB does.

Indexes are expression indexes on ``json_extract`` paths, so ORDER BY on an indexed field scans in
order and stops at the LIMIT. Equality on an indexed top-level field cannot use a plain index test
(the field may hold an array), so ``ensure_indexes`` adds a small partial index of the rows where the
field is an array, and a rare value is looked up as "equal scalar or array-valued, then the exact
test" (see ``_Compiler._candidates``).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from typing import Any, Callable, Sequence

import orjson

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

__all__ = ["SqliteStore"]

_COLLECTION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BAD_SEGMENT_CHARS = re.compile(r"[\"'\\\x00-\x1f]")
# Top-level fields kept in real columns; everything else lives in the JSON text only.
_COLUMNS = {"id": "text", "company": "text", "rev": "integer"}
_NUMBER_TYPES = "('integer','real')"
# Eq/In on an indexed top-level field start from the index when it has fewer candidates than this
NARROW_LIMIT = 1000


def _project(doc: Document, fields: Sequence[str] | None) -> Document:
    if fields is None:
        return doc
    out = {"id": doc["id"]}
    for field in fields:
        if "." in field:
            raise ValueError(f"projections name top-level fields only, not {field!r}")
        if field in doc:
            out[field] = doc[field]
    return out


# --- SQL building ------------------------------------------------------------------------------


def _segments(field: str) -> list[str]:
    if not isinstance(field, str) or not field:
        raise ValueError(f"bad field name {field!r}")
    segments = field.split(".")
    for segment in segments:
        if not segment or segment.startswith("$") or _BAD_SEGMENT_CHARS.search(segment):
            raise ValueError(f"bad field name {field!r}")
    return segments


def _jpath(segments: Sequence[str]) -> str:
    """A JSON path as an SQL string literal; segments are validated, so no quoting is needed."""
    return "'$" + "".join(f'."{s}"' for s in segments) + "'"


def _field_sql(field: str) -> str:
    """The SQL expression for a field's scalar value, as used by ORDER BY and indexes."""
    if field in _COLUMNS:
        return field
    return f"json_extract(doc, {_jpath(_segments(field))})"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str, flags: int) -> re.Pattern:
    return re.compile(pattern, flags)


def _regexp(pattern: str, flags: int, value: Any) -> int:
    if not isinstance(value, str):
        return 0
    return 1 if _compiled(pattern, flags).search(value) else 0


class _Compiler:
    """Turns a port filter into an SQL condition with named parameters."""

    def __init__(self, table: str = "", narrow: Callable[[str, Sequence[Any]], bool] | None = None) -> None:
        self.params: dict[str, Any] = {}
        self._aliases = 0
        self._table = table
        # says whether narrowing through the indexes pays off for (field, values); see _candidates
        self._narrow = narrow

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def alias(self) -> str:
        self._aliases += 1
        return f"j{self._aliases}"

    # element tests: (value_sql, type_sql) of one candidate value -> SQL condition

    def _in_test(self, values: Sequence[Any]) -> Callable[[str, str], str]:
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        bools = {v for v in values if isinstance(v, bool)}
        for v in values:
            if not isinstance(v, (str, int, float, bool)):
                raise TypeError(f"filters compare scalar values only, not {v!r}")
        string_params = [self.param(v) for v in strings]
        number_params = [self.param(v) for v in numbers]

        def test(v: str, t: str) -> str:
            parts = []
            if string_params:
                parts.append(f"({t} = 'text' AND {v} IN ({', '.join(string_params)}))")
            if number_params:
                parts.append(f"({t} IN {_NUMBER_TYPES} AND {v} IN ({', '.join(number_params)}))")
            for flag in sorted(bools):
                parts.append(f"{t} = '{'true' if flag else 'false'}'")
            return "(" + " OR ".join(parts) + ")" if parts else "0"

        return test

    def _bound_test(self, op: str, bound: Any) -> Callable[[str, str], str]:
        if isinstance(bound, bool):
            p = self.param(int(bound))
            return lambda v, t: f"({t} IN ('true','false') AND ({t} = 'true') {op} {p})"
        if isinstance(bound, (int, float)):
            p = self.param(bound)
            return lambda v, t: f"({t} IN {_NUMBER_TYPES} AND {v} {op} {p})"
        if isinstance(bound, str):
            p = self.param(bound)
            return lambda v, t: f"({t} = 'text' AND {v} {op} {p})"
        raise TypeError(f"range bounds are numbers, strings or booleans, not {bound!r}")

    def _regex_test(self, pattern: str, ignore_case: bool) -> Callable[[str, str], str]:
        _compiled(pattern, re.IGNORECASE if ignore_case else 0)  # fail early on a bad pattern
        p, fl = self.param(pattern), self.param(re.IGNORECASE if ignore_case else 0)
        return lambda v, t: f"({t} = 'text' AND specgate_regexp({p}, {fl}, {v}))"

    # traversal

    def _walk(self, base: str, segments: Sequence[str], leaf: Callable[[str, Sequence[str]], str]) -> str:
        """``leaf`` applied at the path from ``base``, also reaching through arrays of sub-documents
        at any intermediate segment (MongoDB's implicit array traversal)."""
        terms = [leaf(base, segments)]
        for k in range(1, len(segments)):
            prefix = _jpath(segments[:k])
            e = self.alias()
            inner = self._walk(f"{e}.value", segments[k:], leaf)
            terms.append(
                f"(json_type({base}, {prefix}) = 'array' AND EXISTS (SELECT 1 FROM json_each({base}, {prefix}) AS {e} "
                f"WHERE {e}.type = 'object' AND {inner}))"
            )
        return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"

    def elements(self, field: str, test: Callable[[str, str], str]) -> str:
        """Some value at ``field`` (an array contributes each element) passes ``test``."""
        if field in _COLUMNS:
            return test(field, f"'{_COLUMNS[field]}'")
        segments = _segments(field)

        def leaf(base: str, segs: Sequence[str]) -> str:
            a = self.alias()
            return (
                f"EXISTS (SELECT 1 FROM json_each({base}, {_jpath(segs)}) AS {a} "
                f"WHERE typeof({a}.key) != 'text' AND {test(f'{a}.value', f'{a}.type')})"
            )

        return self._walk("doc", segments, leaf)

    def exists(self, field: str) -> str:
        if field in _COLUMNS:
            return "1"
        return self._walk("doc", _segments(field), lambda base, segs: f"json_type({base}, {_jpath(segs)}) IS NOT NULL")

    def _candidates(self, field: str, values: Sequence[Any]) -> str:
        """A superset of the rows where a value at top-level ``field`` is one of ``values``, found
        through the indexes: the node itself equals a value (``json_extract`` gives the scalar; a
        boolean gives 1/0, which only widens the set), or the node is an array (the partial
        array-marker index). ANDed before the exact test, it lets SQLite start from the matching
        rows instead of scanning the company's documents."""
        path = _jpath([field])
        marks = ", ".join(self.param(int(v) if isinstance(v, bool) else v) for v in values)
        return (
            f"rowid IN (SELECT rowid FROM {self._table} WHERE json_extract(doc, {path}) IN ({marks}) "
            f"UNION ALL SELECT rowid FROM {self._table} WHERE json_type(doc, {path}) = 'array')"
        )

    def _member(self, field: str, values: Sequence[Any], top: bool) -> str:
        exact = self.elements(field, self._in_test(values))
        if top and self._narrow is not None and self._narrow(field, values):
            return f"({self._candidates(field, values)} AND {exact})"
        return exact

    def compile(self, f: Filter, top: bool = False) -> str:
        """``top``: the condition is a conjunct of the whole WHERE clause (not under OR or NOT),
        where narrowing through indexes pays off."""
        if isinstance(f, Eq):
            if f.value is None:
                return f"NOT {self.exists(f.field)}"
            return self._member(f.field, (f.value,), top)
        if isinstance(f, In):
            values = tuple(f.values)
            present = [v for v in values if v is not None]
            if len(present) == len(values):
                return self._member(f.field, present, top) if present else "0"
            sql = self.elements(f.field, self._in_test(present)) if present else "0"
            return f"({sql} OR NOT {self.exists(f.field)})"
        if isinstance(f, NotIn):
            return f"NOT {self.compile(In(f.field, tuple(f.values)))}"
        if isinstance(f, All):
            if not f.values:
                return "0"
            return "(" + " AND ".join(self.compile(Eq(f.field, v), top) for v in f.values) + ")"
        if isinstance(f, Range):
            parts = [
                self.elements(f.field, self._bound_test(op, bound))
                for op, bound in ((">", f.gt), (">=", f.gte), ("<", f.lt), ("<=", f.lte))
                if bound is not None
            ]
            return "(" + " AND ".join(parts) + ")" if parts else "1"
        if isinstance(f, Regex):
            return self.elements(f.field, self._regex_test(f.pattern, f.ignore_case))
        if isinstance(f, Exists):
            sql = self.exists(f.field)
            return sql if f.present else f"NOT {sql}"
        if isinstance(f, And):
            return "(" + " AND ".join(self.compile(item, top) for item in f.items) + ")" if f.items else "1"
        if isinstance(f, Or):
            return "(" + " OR ".join(self.compile(item) for item in f.items) + ")" if f.items else "0"
        raise TypeError(f"not a filter: {f!r}")


def _where(
    companies: Sequence[str],
    where: Filter | None,
    *,
    extra: str = "",
    table: str = "",
    narrow: Callable[[str, Sequence[Any]], bool] | None = None,
) -> tuple[str, dict[str, Any]]:
    if isinstance(companies, str):
        raise TypeError("companies is a sequence of company ids, not a string")
    compiler = _Compiler(table, narrow)
    marks = ", ".join(compiler.param(c) for c in companies)
    parts = [f"company IN ({marks})" if companies else "0"]
    if extra:
        parts.append(extra)
    if where is not None:
        parts.append(compiler.compile(where, top=True))
    return " AND ".join(parts), compiler.params


# --- the store ---------------------------------------------------------------------------------


class SqliteStore:
    """A ``DocumentStore`` in one SQLite file (``":memory:"`` for a private, throwaway store)."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000):
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._tables: set[str] = set()
        self._indexed: dict[str, frozenset[str]] = {}

    # lifecycle

    async def open(self) -> None:
        if self._conn is not None:
            return
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.create_function("specgate_regexp", 3, _regexp, deterministic=True)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailable(f"cannot prepare {self.path}: {exc}") from exc
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA optimize")  # refresh planner statistics where they went stale
            except sqlite3.Error:
                pass
            self._conn.close()
            self._conn = None
            self._tables.clear()
            self._indexed.clear()

    # internals

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteStore is not open")
        return self._conn

    def _table(self, collection: str) -> str:
        if not isinstance(collection, str) or not _COLLECTION_RE.match(collection) or collection.lower().startswith("sqlite_"):
            raise ValueError(f"bad collection name {collection!r}")
        table = _quote_ident(collection)
        if collection not in self._tables:
            self._execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(id TEXT PRIMARY KEY, company TEXT NOT NULL, rev INTEGER NOT NULL, doc TEXT NOT NULL)"
            )
            self._tables.add(collection)
            self._indexed[collection] = self._load_indexed(collection)
        return table

    def _load_indexed(self, collection: str) -> frozenset[str]:
        """Top-level fields with both a value index (first key) and an array-marker index, as found
        in the file: another process may have declared them."""
        names = [row[0] for row in self._execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (collection,))]
        first_keys, marked = set(), set()
        for name in names:
            kind, _, rest = name.partition(":")
            coll, _, fields = rest.partition(":")
            if coll != collection:
                continue
            if kind in ("ix", "ux"):
                first_keys.add(fields.split(",")[0])
            elif kind == "ty":
                marked.add(fields)
        return frozenset(f for f in first_keys & marked if f not in _COLUMNS and "." not in f)

    def _scope(self, collection: str, companies: Sequence[str], where: Filter | None, **kw: Any) -> tuple[str, dict[str, Any]]:
        table = _quote_ident(collection)
        indexed = self._indexed.get(collection, frozenset())

        def narrow(field: str, values: Sequence[Any]) -> bool:
            return field in indexed and self._few_candidates(table, field, values)

        return _where(companies, where, table=table, narrow=narrow, **kw)

    def _few_candidates(self, table: str, field: str, values: Sequence[Any]) -> bool:
        """Whether an Eq/In on ``field`` has few index candidates (equal scalars plus array-valued
        rows), counted on the indexes alone up to NARROW_LIMIT. Few: starting from them beats any
        scan (a rare value among 100k rows: ~0.1 ms instead of a 600 ms scan). Many (a common status,
        an array field like tags): the scan stays, which with an ORDER BY index and a LIMIT stops
        early and is several times faster than collecting every candidate first."""
        path = _jpath([field])
        marks = ", ".join("?" for _ in values)
        params = [int(v) if isinstance(v, bool) else v for v in values]
        sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE json_extract(doc, {path}) IN ({marks}) "
            f"UNION ALL SELECT 1 FROM {table} WHERE json_type(doc, {path}) = 'array' LIMIT {NARROW_LIMIT})"
        )
        return self._execute(sql, params).fetchone()[0] < NARROW_LIMIT

    def _execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        try:
            return self._db().execute(sql, params)
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if "locked" in message or "busy" in message or "unable to open" in message or "disk i/o" in message:
                raise StoreUnavailable(str(exc)) from exc
            raise

    def _write(self, collection: str, sql: str, params: Any) -> sqlite3.Cursor:
        try:
            return self._execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise DuplicateKey(collection, _clashing_fields(collection, str(exc))) from exc

    @staticmethod
    def _load(text: str) -> Document:
        return orjson.loads(text)

    # the port

    async def ensure_indexes(self, collection: str, indexes: Sequence[Index]) -> None:
        table = self._table(collection)
        for index in indexes:
            if not index.fields:
                raise ValueError("an index needs at least one field")
            exprs = [_field_sql(f) for f in index.fields]
            name = _quote_ident(f"{'ux' if index.unique else 'ix'}:{collection}:{','.join(index.fields)}")
            if index.unique:
                partial = " AND ".join(f"{e} IS NOT NULL" for e in exprs)
                self._execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(exprs)}) WHERE {partial}")
            else:
                self._execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(exprs)})")
            first = index.fields[0]
            if first not in _COLUMNS and "." not in first:
                # rows whose field holds an array: tiny, and what makes Eq/In narrowing exact (see _candidates)
                marker = _quote_ident(f"ty:{collection}:{first}")
                is_array = f"json_type(doc, {_jpath([first])}) = 'array'"
                self._execute(f"CREATE INDEX IF NOT EXISTS {marker} ON {table} (json_type(doc, {_jpath([first])})) WHERE {is_array}")
        self._indexed[collection] = self._load_indexed(collection)

    async def insert(self, collection: str, doc: Document) -> Document:
        table = self._table(collection)
        stored = prepare(doc)
        stored["rev"] = 1
        self._write(
            collection,
            f"INSERT INTO {table} (id, company, rev, doc) VALUES (?, ?, 1, ?)",
            (stored["id"], stored["company"], orjson.dumps(stored).decode()),
        )
        return stored

    async def get(
        self, collection: str, id: str, *, companies: Sequence[str], fields: Sequence[str] | None = None
    ) -> Document | None:
        table = self._table(collection)
        cond, params = self._scope(collection, companies, None, extra="id = :id")
        params["id"] = id
        row = self._execute(f"SELECT doc FROM {table} WHERE {cond}", params).fetchone()
        return None if row is None else _project(self._load(row[0]), fields)

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
        table = self._table(collection)
        cond, params = self._scope(collection, companies, where)
        keys = [f"{_field_sql(field)} {'DESC' if descending else 'ASC'}" for field, descending in order]
        if not any(field == "id" for field, _ in order):
            keys.append("id ASC")
        sql = f"SELECT doc FROM {table} WHERE {cond} ORDER BY {', '.join(keys)}"
        if limit is not None or skip:
            sql += f" LIMIT {int(limit) if limit is not None else -1} OFFSET {max(int(skip), 0)}"
        rows = self._execute(sql, params).fetchall()
        return [_project(self._load(row[0]), fields) for row in rows]

    async def count(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int:
        table = self._table(collection)
        cond, params = self._scope(collection, companies, where)
        return self._execute(f"SELECT COUNT(*) FROM {table} WHERE {cond}", params).fetchone()[0]

    async def distinct(
        self, collection: str, field: str, *, companies: Sequence[str], where: Filter | None = None
    ) -> list[Any]:
        table = self._table(collection)
        cond, params = self._scope(collection, companies, where)
        if field in _COLUMNS:
            rows = self._execute(f"SELECT DISTINCT {field} FROM {table} WHERE {cond}", params).fetchall()
            return distinct_sorted(row[0] for row in rows)
        segments = _segments(field)
        head = _jpath(segments[:1])
        rows = self._execute(
            f"SELECT DISTINCT doc -> {head} FROM {table} WHERE {cond} AND json_type(doc, {head}) IS NOT NULL", params
        ).fetchall()
        return distinct_sorted(
            value for row in rows for value in path_values(orjson.loads(row[0]), segments[1:])
        )

    async def replace(self, collection: str, doc: Document, *, expected_rev: int) -> Document | None:
        table = self._table(collection)
        stored = prepare(doc)
        stored["rev"] = int(expected_rev) + 1
        cursor = self._write(
            collection,
            f"UPDATE {table} SET rev = ?, doc = ? WHERE id = ? AND company = ? AND rev = ?",
            (stored["rev"], orjson.dumps(stored).decode(), stored["id"], stored["company"], int(expected_rev)),
        )
        return stored if cursor.rowcount == 1 else None

    async def delete(
        self, collection: str, id: str, *, companies: Sequence[str], expected_rev: int | None = None
    ) -> bool:
        table = self._table(collection)
        cond, params = self._scope(
            collection, companies, None, extra="id = :id" + ("" if expected_rev is None else " AND rev = :rev")
        )
        params["id"] = id
        if expected_rev is not None:
            params["rev"] = int(expected_rev)
        return self._execute(f"DELETE FROM {table} WHERE {cond}", params).rowcount == 1

    async def delete_many(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int:
        table = self._table(collection)
        cond, params = self._scope(collection, companies, where)
        return self._execute(f"DELETE FROM {table} WHERE {cond}", params).rowcount


_INDEX_CLASH = re.compile(r"index '(?:ux|ix):[^:]*:([^']*)'")


def _clashing_fields(collection: str, message: str) -> tuple[str, ...]:
    """The fields named by an SQLite UNIQUE failure: ``<table>.id`` or one of our index names."""
    found = _INDEX_CLASH.search(message)
    if found:
        return tuple(found.group(1).split(","))
    if message.rstrip().endswith(".id"):
        return ("id",)
    return ()
