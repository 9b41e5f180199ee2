"""The embedded document store: one SQLite file, one table per collection, documents as JSON text.

Calls are short and local, so they run directly on the event-loop thread. Several processes may
open the same file (one per gateway worker): WAL mode lets readers and one writer proceed together,
``busy_timeout`` waits out writer contention, and every write is one statement, so the
compare-and-swap in ``replace`` is a single ``UPDATE ... WHERE id=? AND company=? AND rev=?`` and
duplicate detection is left to the PRIMARY KEY and the unique indexes.

Filters compile to SQL with MongoDB's array semantics: a path may hold a scalar or an array, and
dotted paths reach through arrays of sub-documents (``models.input.name``). Values compare within
their type bracket (numbers with numbers, strings with strings, booleans with booleans), as MongoDB
does.

Key columns. Parsing a 2 KB document per scanned row is what made queries slow, so each top-level
field of a declared non-unique index gets a VIRTUAL generated column ``"k:<field>"``: the value
itself for a string or number, a type marker for anything else (``_KEY`` below), NULL when missing.
Being generated from ``doc``, the columns stay right whoever writes the row (another gateway
process, an older version, a bulk loader writing only ``doc``), and ALTER TABLE adds them to an
existing file without rewriting it. Being VIRTUAL, a key is computed on write, into the indexes,
and queries read it there. ORDER BY sorts by keys, indexed or not, which puts objects, arrays and
booleans after strings, in MongoDB's order. For the fields of ``filter_only`` indexes, arrays by
nature, ``"a:<field>"`` holds the array itself (JSON text): filters on them (``system_tags:
[-archived]``) test its elements there instead of parsing the document of every row they scan. Each
generated column costs JSON parses on every write (SQLite 3.40 does not cache them), so there are no
array-text columns for fields that rarely hold an array.

Indexes. A declared index becomes ``kx:<collection>:<fields>`` over the key columns, followed by
``company``, every other key column and every array-text column of the collection (a ``filter_only``
index adds its columns to the others and gets no kx index of its own): a query that filters on key
columns and orders by an indexed field walks that one index and reads the table (the document) only
for rows that pass, so a page costs about the same at 1k and 100k rows. An index declared with
``id`` after its fields (``(last_update, id)``) also serves the tie-break, so a page in either
direction needs no sort, and a page projected to key fields (what list calls ask for) takes their
values from the index: no JSON is parsed, though SQLite still visits each answered row (it never
counts an index over generated columns as covering, 3.40 to 3.51; ~1 µs a row). A field whose rows
never hold an array compiles to plain comparisons on its column, which the indexes serve; that is
checked per query with one index lookup (in the kx index the field leads, else its partial index
``ax:<collection>:<field>`` of array rows), and when array rows exist they are also tested element
by element on the JSON. Unique indexes stay expression indexes over ``json_extract`` (their clash
rules are unchanged).

Plans. SQLite's planner, given an equality on one indexed field and an ORDER BY on another, prefers
to collect and sort every match, which costs as much as the match count (seconds for a common status
at 100k rows). ``_hint`` chooses instead: it counts a conjunct's matches on its index up to the
break-even point and forces either that index (few matches) or the ORDER BY field's (many, so the
walk in order stops early).

Files written by the previous layout (expression indexes ``ix:``/``ty:``, no key columns) open as
they are; ``ensure_indexes`` (run at every start) adds the columns and indexes and drops the
superseded ones (about 12 s for 100k tasks, once). Generated columns need SQLite 3.31, ``->`` 3.38.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import sqlite3
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, Iterator, Sequence

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
_PLAIN = re.compile(r"[ !#-.0-\[\]-~]*")  # printable ASCII but " / \\: no JSON writer escapes these
CACHE_KIB = 16 * 1024  # page cache per connection

# Key markers for non-scalar values. Blobs sort after every number and string, in MongoDB's bracket
# order (objects, arrays, booleans), and never equal a bound string or number.
_OBJECT, _ARRAY, _FALSE, _TRUE = "x'02'", "x'03'", "x'0400'", "x'0401'"
# SQLite parses a document once per statement however many json_* calls read it.
_KEY = (
    "CASE json_type(doc, {path}) WHEN 'text' THEN json_extract(doc, {path}) "
    "WHEN 'integer' THEN json_extract(doc, {path}) WHEN 'real' THEN json_extract(doc, {path}) "
    f"WHEN 'object' THEN {_OBJECT} WHEN 'array' THEN {_ARRAY} WHEN 'false' THEN {_FALSE} WHEN 'true' THEN {_TRUE} END"
)
# The bracket edge a range bound of each type needs (SQLite orders NULL < numbers < text < blobs):
# (for a lower bound, for an upper bound); None where the comparison itself excludes the rest.
_BRACKETS = {"number": ("< ''", None), "text": ("< x''", ">= ''"), "bool": (f"<= {_TRUE}", f">= {_FALSE}")}


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


_MARKED = {bytes.fromhex(_FALSE[2:-1]): False, bytes.fromhex(_TRUE[2:-1]): True}


def _from_keys(row: Sequence[Any], picks: Sequence[str]) -> Document:
    """A projected document from (id, then key, array text, JSON of an object or array per field): a
    key is the value itself for strings and numbers, a marker otherwise (see ``_KEY``)."""
    out: Document = {"id": row[0]}
    at = 1
    for field in picks:
        key = row[at]
        if key is not None:
            if type(key) is not bytes:
                out[field] = key
            else:
                value = row[at + 1] or row[at + 2]
                out[field] = _MARKED[key] if value is None else orjson.loads(value)
        at += 3
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
    """A field's value as ``json_extract`` gives it: what the unique indexes are built on."""
    if field in _COLUMNS:
        return field
    return f"json_extract(doc, {_jpath(_segments(field))})"


def _key_sql(field: str) -> str:
    """A field's key (see ``_KEY``) computed from the document: key columns are defined by it, and
    ORDER BY on a field without one uses it, so order is the same with or without an index."""
    if field in _COLUMNS:
        return field
    return _KEY.format(path=_jpath(_segments(field)))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _key_column(field: str) -> str:
    return _quote_ident(f"k:{field}")


def _text_column(field: str) -> str:
    """A key field's array-text column: the array as JSON when the field holds one, else NULL."""
    return _quote_ident(f"a:{field}")


def _text_sql(field: str) -> str:
    path = _jpath(_segments(field))
    return f"CASE json_type(doc, {path}) WHEN 'array' THEN json_extract(doc, {path}) END"


def _bracket(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    raise TypeError(f"range bounds are numbers, strings or booleans, not {value!r}")


def _check_scalar(value: Any) -> None:
    if not isinstance(value, (str, int, float, bool)):
        raise TypeError(f"filters compare scalar values only, not {value!r}")


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str, flags: int) -> re.Pattern:
    return re.compile(pattern, flags)


def _regexp(pattern: str, flags: int, value: Any) -> int:
    if not isinstance(value, str):
        return 0
    return 1 if _compiled(pattern, flags).search(value) else 0


def _conjuncts(where: Filter | None) -> list[Filter]:
    """The top-level AND terms of a filter."""
    if where is None:
        return []
    if isinstance(where, And):
        return [term for item in where.items for term in _conjuncts(item)]
    return [where]


def _fields(where: Filter | None) -> set[str]:
    if where is None:
        return set()
    if isinstance(where, (And, Or)):
        return {name for item in where.items for name in _fields(item)}
    return {where.field}


class _Compiler:
    """Turns a port filter into an SQL condition with named parameters.

    ``keys`` maps fields with a key column to it; ``arrays`` names those whose column holds array
    markers somewhere (their array rows get the element-wise JSON test); ``texts`` maps key fields
    to their array-text columns, where that test finds the elements without reading the document."""

    def __init__(
        self, keys: dict[str, str] | None = None, arrays: frozenset[str] = frozenset(), texts: dict[str, str] | None = None
    ) -> None:
        self.params: list[Any] = []
        self._aliases = 0
        self._keys = keys or {}
        self._arrays = arrays
        self._texts = texts or {}

    def param(self, value: Any) -> str:
        """A numbered parameter (``?N``, bound from a list): SQLite finds a named one by a linear scan
        of the names, so a filter of 10,000 values took seconds to prepare and bind."""
        self.params.append(value)
        return f"?{len(self.params)}"

    def alias(self) -> str:
        self._aliases += 1
        return f"j{self._aliases}"

    # element tests on the JSON: (value_sql, type_sql) of one candidate value -> SQL condition

    def _in_test(self, values: Sequence[Any]) -> Callable[[str, str], str]:
        for v in values:
            _check_scalar(v)
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        bools = {v for v in values if isinstance(v, bool)}
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
        kind = _bracket(bound)
        if kind == "bool":
            p = self.param(int(bound))
            return lambda v, t: f"({t} IN ('true','false') AND ({t} = 'true') {op} {p})"
        p = self.param(bound)
        if kind == "number":
            return lambda v, t: f"({t} IN {_NUMBER_TYPES} AND {v} {op} {p})"
        return lambda v, t: f"({t} = 'text' AND {v} {op} {p})"

    def _regex_test(self, pattern: str, ignore_case: bool) -> Callable[[str, str], str]:
        p, fl = self._regex_params(pattern, ignore_case)
        return lambda v, t: f"({t} = 'text' AND specgate_regexp({p}, {fl}, {v}))"

    def _regex_params(self, pattern: str, ignore_case: bool) -> tuple[str, str]:
        _compiled(pattern, re.IGNORECASE if ignore_case else 0)  # fail early on a bad pattern
        return self.param(pattern), self.param(re.IGNORECASE if ignore_case else 0)

    # traversal of the JSON

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

    def _array_elements(self, field: str, test: Callable[[str, str], str], among: Sequence[Any] = ()) -> str:
        """``elements`` on a row where the key field holds an array: read from the array-text column
        (the indexes carry it) when there is one. When the test is membership in ``among``, plain
        strings all, a substring search for their JSON forms first spares most rows the json_each
        (a table-valued function, ~4 µs a row); it relies on such strings being written unescaped.
        The search guards the json_each in a CASE: inside an expression (a NotIn's ``NOT ifnull``)
        SQLite evaluates both sides of an AND, so ``near AND exact`` ran json_each on every row."""
        col = self._texts.get(field)
        if col is None:
            return self.elements(field, test)
        a = self.alias()
        exact = f"EXISTS (SELECT 1 FROM json_each({col}) AS {a} WHERE {test(f'{a}.value', f'{a}.type')})"
        if not among or not all(isinstance(v, str) and _PLAIN.fullmatch(v) for v in among):
            return exact
        near = _joined("OR", [f"instr({col}, {self.param(orjson.dumps(v).decode())})" for v in among])
        return f"CASE WHEN {near} THEN {exact} ELSE 0 END"

    def exists(self, field: str) -> str:
        if field in _COLUMNS:
            return "1"
        if field in self._keys:
            return f"{self._keys[field]} IS NOT NULL"
        return self._walk("doc", _segments(field), lambda base, segs: f"json_type({base}, {_jpath(segs)}) IS NOT NULL")

    # tests on a key column: `plain` on the key, plus the JSON test for array rows when there are any

    def _or_arrays(self, field: str, plain: str, on_json: Callable[[], str]) -> str:
        if field not in self._arrays:
            return plain
        return f"({plain} OR ({self._keys[field]} = {_ARRAY} AND {on_json()}))"

    def _key_value(self, value: Any) -> str:
        if isinstance(value, bool):
            return _TRUE if value else _FALSE
        return self.param(value)

    def _member(self, field: str, values: Sequence[Any]) -> str:
        """Some value at ``field`` is one of ``values`` (scalars, no None)."""
        if field not in self._keys:
            return self.elements(field, self._in_test(values))
        for v in values:
            _check_scalar(v)
        col, keys = self._keys[field], ", ".join(self._key_value(v) for v in values)
        if field not in self._arrays:
            return f"{col} IN ({keys})"
        # one IN list, so the index still serves it; array rows then need the element test
        exact = self._array_elements(field, self._in_test(values), values)
        return f"({col} IN ({keys}, {_ARRAY}) AND ({col} != {_ARRAY} OR {exact}))"

    def _range(self, f: Range) -> str:
        bounds = [(op, b) for op, b in ((">", f.gt), (">=", f.gte), ("<", f.lt), ("<=", f.lte)) if b is not None]
        if not bounds:
            return "1"
        if f.field not in self._keys:
            return "(" + " AND ".join(self.elements(f.field, self._bound_test(op, b)) for op, b in bounds) + ")"
        col, terms = self._keys[f.field], []
        for op, bound in bounds:
            lower, upper = _BRACKETS[_bracket(bound)]
            terms.append(f"{col} {op} {self._key_value(bound)}")
            edge = lower if op.startswith(">") else upper
            if edge is not None and f"{col} {edge}" not in terms:
                terms.append(f"{col} {edge}")
        plain = "(" + " AND ".join(terms) + ")"
        return self._or_arrays(
            f.field, plain,
            lambda: "(" + " AND ".join(self._array_elements(f.field, self._bound_test(op, b)) for op, b in bounds) + ")",
        )  # fmt: skip

    def _regex(self, f: Regex) -> str:
        if f.field not in self._keys:
            return self.elements(f.field, self._regex_test(f.pattern, f.ignore_case))
        p, fl = self._regex_params(f.pattern, f.ignore_case)
        plain = f"specgate_regexp({p}, {fl}, {self._keys[f.field]})"
        return self._or_arrays(f.field, plain, lambda: self._array_elements(f.field, self._regex_test(f.pattern, f.ignore_case)))

    def compile(self, f: Filter) -> str:
        if isinstance(f, Eq):
            if f.value is None:
                return f"NOT {self.exists(f.field)}"
            return self._member(f.field, (f.value,))
        if isinstance(f, In):
            values = tuple(f.values)
            present = [v for v in values if v is not None]
            sql = self._member(f.field, present) if present else "0"
            return sql if len(present) == len(values) else f"({sql} OR NOT {self.exists(f.field)})"
        if isinstance(f, NotIn):
            # key comparisons are NULL on a missing field: NOT must see 0 there
            return f"NOT ifnull({self.compile(In(f.field, tuple(f.values)))}, 0)"
        if isinstance(f, All):
            if not f.values:
                return "0"
            return _joined("AND", [self.compile(Eq(f.field, v)) for v in f.values])
        if isinstance(f, Range):
            return self._range(f)
        if isinstance(f, Regex):
            return self._regex(f)
        if isinstance(f, Exists):
            sql = self.exists(f.field)
            return sql if f.present else f"NOT {sql}"
        if isinstance(f, And):
            return _joined("AND", [self.compile(item) for item in f.items]) if f.items else "1"
        if isinstance(f, Or):
            return _joined("OR", [self.compile(item) for item in f.items]) if f.items else "0"
        raise TypeError(f"not a filter: {f!r}")


def _joined(op: str, parts: Sequence[str]) -> str:
    """``parts`` joined by AND or OR as a balanced tree: SQLite nests a flat chain one level per term
    and refuses expressions deeper than 1000 levels (an ``__$all`` of 1000 tags was a 500)."""
    if len(parts) <= 32:
        return "(" + f" {op} ".join(parts) + ")"
    half = len(parts) // 2
    return f"({_joined(op, parts[:half])} {op} {_joined(op, parts[half:])})"


def _merge_exclusions(terms: list[Filter]) -> list[Filter]:
    """NotIn terms on one field as one: no element in X and none in Y is none in X + Y, and a list
    call excluding hidden and archived tasks then tests each scanned row once."""
    out: list[Filter] = []
    at: dict[str, int] = {}
    for term in terms:
        if isinstance(term, NotIn) and term.field in at:
            first = out[at[term.field]]
            out[at[term.field]] = NotIn(term.field, (*first.values, *term.values))  # type: ignore[union-attr]
            continue
        if isinstance(term, NotIn):
            at[term.field] = len(out)
        out.append(term)
    return out


def _where(
    companies: Sequence[str],
    where: Filter | None,
    *,
    extra: str = "",
    keys: dict[str, str] | None = None,
    arrays: frozenset[str] = frozenset(),
    texts: dict[str, str] | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause of a tenant-scoped query, key-column conditions first (cheapest)."""
    if isinstance(companies, str):
        raise TypeError("companies is a sequence of company ids, not a string")
    compiler = _Compiler(keys, arrays, texts)
    marks = ", ".join(compiler.param(c) for c in companies)
    parts = [f"company IN ({marks})" if companies else "0"]
    if extra:
        parts.append(extra)
    terms = _merge_exclusions(_conjuncts(where) or ([] if where is None else [where]))  # [And(())] compiles to 1
    keyed = keys or {}
    terms.sort(key=lambda t: isinstance(t, (And, Or)) or t.field not in keyed)  # stable
    parts += [compiler.compile(t) for t in terms]
    return _joined("AND", parts), compiler.params


# --- the store ---------------------------------------------------------------------------------


@dataclass
class _Layout:
    """What a collection's table holds, as found in the file (another process may have added to it)."""

    keys: dict[str, str] = dc_field(default_factory=dict)  # field -> its key column (quoted)
    texts: dict[str, str] = dc_field(default_factory=dict)  # key field -> its array-text column (quoted)
    leading: dict[str, str] = dc_field(default_factory=dict)  # field -> a kx index it leads (quoted)
    probes: dict[tuple[str, ...], str] = dc_field(default_factory=dict)  # fields -> their array probe SQL
    filters: dict[tuple, tuple[str, list[Any]]] = dc_field(default_factory=dict)  # see SqliteStore._compiled


class SqliteStore:
    """A ``DocumentStore`` in one SQLite file (``":memory:"`` for a private, throwaway store)."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000):
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._tables: dict[str, str] = {}  # collection -> quoted table name, once created
        self._layouts: dict[str, _Layout] = {}
        self._get_sql: dict[tuple[str, int], str] = {}

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
            # 16 MiB instead of 2: the id index and the upper levels of the key indexes of a
            # 100k-task store stay in memory, so a get reads one page it does not have
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            conn.create_function("specgate_regexp", 3, _regexp, deterministic=True)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailable(f"cannot prepare {self.path}: {exc}") from exc
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            try:
                # refresh planner statistics where they went stale, sampling (a full ANALYZE of the
                # key indexes of 100k tasks would hold up shutdown)
                self._conn.execute("PRAGMA analysis_limit = 1000")
                self._conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            self._conn.close()
            self._conn = None
            self._tables.clear()
            self._layouts.clear()

    # internals

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteStore is not open")
        return self._conn

    def _table(self, collection: str) -> str:
        table = self._tables.get(collection) if isinstance(collection, str) else None
        if table is not None:
            return table
        if not isinstance(collection, str) or not _COLLECTION_RE.match(collection) or collection.lower().startswith("sqlite_"):
            raise ValueError(f"bad collection name {collection!r}")
        table = _quote_ident(collection)
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(id TEXT PRIMARY KEY, company TEXT NOT NULL, rev INTEGER NOT NULL, doc TEXT NOT NULL)"
        )
        self._tables[collection] = table
        self._layouts[collection] = self._load_layout(collection)
        return table

    def _load_layout(self, collection: str) -> _Layout:
        """Key columns and kx indexes as found in the file. A key column counts once its array rows
        can be found through an index: one it leads, or its ``ax`` marker index."""
        table = _quote_ident(collection)
        names = [row[1] for row in self._execute(f"PRAGMA table_xinfo({table})")]
        columns = {name[2:] for name in names if name.startswith("k:")}
        texts = {name[2:] for name in names if name.startswith("a:")}
        layout, marked = _Layout(), set()
        for (name,) in self._execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (collection,)):
            kind, _, rest = name.partition(":")
            coll, _, fields = rest.partition(":")
            if coll != collection:
                continue
            if kind == "kx":
                layout.leading.setdefault(fields.split(",")[0], _quote_ident(name))
            elif kind == "ax":
                marked.add(fields)
        layout.keys = {f: _key_column(f) for f in sorted(columns & (marked | layout.leading.keys() | texts))}
        layout.texts = {f: _text_column(f) for f in layout.keys if f in texts}
        return layout

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

    @contextlib.contextmanager
    def _transaction(self, needed: bool = True, *, write: bool = False) -> Iterator[None]:
        """One snapshot for several statements: the array probe and the query it shaped."""
        db = self._db()
        if not needed or db.in_transaction:
            yield
            return
        self._execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    def _key_fields(self, collection: str, where: Filter | None) -> list[str]:
        """The key fields a filter uses: their compiled form depends on ``_arrays``."""
        return sorted(_fields(where) & self._layouts[collection].keys.keys())

    def _probed(self, collection: str, where: Filter | None) -> bool:
        """Whether compiling ``where`` probes for array rows (a key field not declared an array):
        the probe and the query it shaped then run in one ``_transaction``, one snapshot."""
        texts = self._layouts[collection].texts
        return any(field not in texts for field in self._key_fields(collection, where))

    def _scope(self, collection: str, companies: Sequence[str], where: Filter | None) -> tuple[str, list[Any]]:
        """``_where`` with this collection's key columns; call inside ``_transaction``."""
        return self._compiled(collection, companies, where, self._arrays(collection, self._key_fields(collection, where)))

    def _compiled(
        self, collection: str, companies: Sequence[str], where: Filter | None, arrays: frozenset[str]
    ) -> tuple[str, list[Any]]:
        """``_where``, remembered per layout: list calls repeat the same filters (a UI polling, the
        SDK paging), and compiling one costs more than running it. Keyed by ``repr``, which tells
        ``True`` from ``1`` where filter equality does not; the parameters are shared, never changed."""
        layout = self._layouts[collection]
        text = repr(where)
        key = (tuple(companies), text, arrays)
        found = layout.filters.get(key)
        if found is None:
            found = _where(companies, where, keys=layout.keys, arrays=arrays, texts=layout.texts)
            if len(text) <= 4096:  # long id lists are rarely repeated
                if len(layout.filters) >= 512:
                    layout.filters.clear()
                layout.filters[key] = found
        return found

    def _arrays(self, collection: str, fields: Sequence[str]) -> frozenset[str]:
        """Which of these key fields hold an array in some row: one index lookup each, in the kx
        index the field leads or its ``ax`` index."""
        layout = self._layouts[collection]
        listed = frozenset(f for f in fields if f in layout.texts)  # arrays by declaration: no probe
        fields = [f for f in fields if f not in listed]
        if not fields:
            return listed
        sql = layout.probes.get(tuple(fields))
        if sql is None:
            table = _quote_ident(collection)
            sql = "SELECT " + ", ".join(
                f"EXISTS (SELECT 1 FROM {table} WHERE {layout.keys[f]} = {_ARRAY})" for f in fields
            )
            layout.probes[tuple(fields)] = sql
        found = self._execute(sql).fetchone()
        return listed | frozenset(f for f, has in zip(fields, found) if has)

    def _hint(
        self, collection: str, companies: Sequence[str], where: Filter | None, arrays: frozenset[str],
        order: Sequence[tuple[str, bool]], skip: int, limit: int | None,
    ) -> str:  # fmt: skip
        """``INDEXED BY`` for a page ordered by an indexed field: the index of the most selective
        equality or range when it has few matches, else the ORDER BY field's index (walk in order,
        stop at the page). Walking costs about (skip + limit) * rows / matches index entries (~0.3 µs
        each), collecting a table read and a sort per match (~11 µs, measured on 2 KB tasks); the
        break-even is near sqrt((skip + limit) * rows / 32) matches, where counting them stops."""
        layout = self._layouts[collection]
        first = order[0][0] if order else "id"
        if limit is None or first not in layout.leading:
            return ""
        terms = [t for t in _conjuncts(where) if not isinstance(t, (And, Or))]
        if any(isinstance(t, (Eq, In)) and t.field == "id" for t in terms):
            return ""  # the primary key finds them
        table = _quote_ident(collection)
        seekable = [
            t for t in terms
            if t.field in layout.keys and t.field in layout.leading and t.field != first and (
                isinstance(t, Eq) and t.value is not None
                or isinstance(t, In) and None not in t.values
                or isinstance(t, Range) and t.field not in arrays  # with array rows, no seekable form
            )
        ]  # fmt: skip
        if seekable:
            rows = self._execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
            cap = math.isqrt((max(int(skip), 0) + int(limit)) * rows // 32) + 1
            best: tuple[int, str] | None = None
            for term in seekable:
                index = layout.leading[term.field]
                cond, params = _where(companies, term, keys=layout.keys, arrays=arrays, texts=layout.texts)
                count = self._execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} INDEXED BY {index} WHERE {cond} LIMIT {cap})", params
                ).fetchone()[0]
                if count < cap and (best is None or count < best[0]):
                    best = (count, index)
            if best is not None:
                return f"INDEXED BY {best[1]}"
        return f"INDEXED BY {layout.leading[first]}"

    def _order_sql(self, collection: str, order: Sequence[tuple[str, bool]]) -> str:
        keys = self._layouts[collection].keys
        terms = [f"{keys.get(field) or _key_sql(field)} {'DESC' if descending else 'ASC'}" for field, descending in order]
        if not any(field == "id" for field, _ in order):
            terms.append(f"id {'DESC' if order and order[-1][1] else 'ASC'}")  # a (field, id) index serves either way
        return ", ".join(terms)

    @staticmethod
    def _load(text: str) -> Document:
        return orjson.loads(text)

    # the port

    async def ensure_indexes(self, collection: str, indexes: Sequence[Index]) -> None:
        table = self._table(collection)
        for index in indexes:
            if not index.fields:
                raise ValueError("an index needs at least one field")
            for name in index.fields:
                _segments(name)
        # One migration at a time, whichever process runs it. Building the indexes of an existing
        # file takes a while (~12 s for 100k tasks), so a process starting meanwhile waits that out.
        self._execute(f"PRAGMA busy_timeout = {max(int(self._busy_timeout_ms), 600_000)}")
        try:
            with self._transaction(write=True):
                self._migrate(collection, table, indexes)
        finally:
            self._execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        self._layouts[collection] = self._load_layout(collection)

    def _migrate(self, collection: str, table: str, indexes: Sequence[Index]) -> None:
        """Bring the table to the declared indexes: a key column and an array-text column per
        top-level field of a non-unique index; one kx index per such index that is not
        ``filter_only`` (rebuilt when the columns it covers changed); an ``ax`` marker index for key
        fields that lead no kx index; the unique expression indexes. Then drop what the previous
        layout used instead (``ix:``, ``ty:``)."""
        existing = {
            name: sql
            for name, sql in self._execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (collection,))
        }
        names = [row[1] for row in self._execute(f"PRAGMA table_xinfo({table})")]
        columns = {name[2:] for name in names if name.startswith("k:")}
        texts = {name[2:] for name in names if name.startswith("a:")}
        plain = [index for index in indexes if not index.unique]
        wanted = {f for index in plain for f in index.fields if f not in _COLUMNS and "." not in f}
        for name in sorted(wanted - columns):
            self._execute(f"ALTER TABLE {table} ADD COLUMN {_key_column(name)} GENERATED ALWAYS AS ({_key_sql(name)}) VIRTUAL")
        keys = columns | wanted
        # array texts only where declared (filter_only): each generated column costs JSON parses on
        # every write, and a field that rarely holds an array is served from the document instead
        listed = {f for index in plain if index.filter_only for f in index.fields if f in keys}
        for name in sorted(listed - texts):
            self._execute(f"ALTER TABLE {table} ADD COLUMN {_text_column(name)} GENERATED ALWAYS AS ({_text_sql(name)}) VIRTUAL")
        carried = [_text_column(f) for f in sorted((texts & keys) | listed)]

        declared = {",".join(index.fields): index.fields for index in plain if not index.filter_only}
        prefix = f"kx:{collection}:"
        for name in [n for n in existing if n.startswith(prefix)]:  # kept, unless a longer one starts alike
            fields = tuple(name[len(prefix):].split(","))
            if any(len(d) > len(fields) and d[: len(fields)] == fields for d in declared.values()):
                self._execute(f"DROP INDEX IF EXISTS {_quote_ident(name)}")
            else:
                declared.setdefault(",".join(fields), fields)
        for joined, fields in declared.items():
            covered = [*fields, *(["company"] if "company" not in fields else []), *sorted(keys - set(fields))]
            name = _quote_ident(prefix + joined)
            columns_sql = [_key_column(f) if f in keys else _key_sql(f) for f in covered] + carried
            sql = f"CREATE INDEX {name} ON {table} ({', '.join(columns_sql)})"
            if existing.get(prefix + joined) != sql:
                self._execute(f"DROP INDEX IF EXISTS {name}")
                self._execute(sql)
            self._execute(f"DROP INDEX IF EXISTS {_quote_ident(f'ix:{collection}:{joined}')}")

        leads = {fields[0] for fields in declared.values()}
        for name in sorted(keys):
            marker = _quote_ident(f"ax:{collection}:{name}")
            if name in leads or name in listed:  # a listed field is taken to hold arrays (see _arrays)
                self._execute(f"DROP INDEX IF EXISTS {marker}")
            else:
                col = _key_column(name)
                self._execute(f"CREATE INDEX IF NOT EXISTS {marker} ON {table} ({col}) WHERE {col} = {_ARRAY}")
        for name in existing:
            if name.startswith(f"ty:{collection}:"):
                self._execute(f"DROP INDEX IF EXISTS {_quote_ident(name)}")
        for index in indexes:
            if index.unique:
                exprs = [_field_sql(f) for f in index.fields]
                name = _quote_ident(f"ux:{collection}:{','.join(index.fields)}")
                partial = " AND ".join(f"{e} IS NOT NULL" for e in exprs)
                self._execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(exprs)}) WHERE {partial}")

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
        if isinstance(companies, str):
            raise TypeError("companies is a sequence of company ids, not a string")
        if not companies:
            return None
        # the hottest call: its statement is built once per collection and company count
        table = self._tables.get(collection) or self._table(collection)
        sql = self._get_sql.get((table, len(companies)))
        if sql is None:
            sql = f"SELECT doc FROM {table} WHERE id = ? AND company IN ({', '.join('?' for _ in companies)})"
            self._get_sql[(table, len(companies))] = sql
        row = self._execute(sql, (id, *companies)).fetchone()
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
        self._table(collection)
        picks = self._picks(collection, fields)
        with self._transaction(self._probed(collection, where)):
            sql, params, hint = self._select(collection, companies, where, order, skip, limit, picks)
            try:
                rows = self._execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if not hint or "no such index" not in str(exc):
                    raise
                # another process rebuilt the index meanwhile: learn the file again, let SQLite plan
                self._layouts[collection] = self._load_layout(collection)
                rows = self._execute(sql.replace(f" {hint} ", " ", 1), params).fetchall()
        if picks is not None:
            return [_from_keys(row, picks) for row in rows]
        return [_project(self._load(row[0]), fields) for row in rows]

    def _picks(self, collection: str, fields: Sequence[str] | None) -> list[str] | None:
        """The fields of a projection when the kx indexes hold them all (key fields): a page of them
        then takes their values from the index, no document parsed but those of object or array
        values that have no array-text column."""
        if fields is None:
            return None
        keys = self._layouts[collection].keys
        if not all(f == "id" or f in keys for f in fields):
            return None
        return [f for f in dict.fromkeys(fields) if f != "id"]

    def _select(
        self, collection: str, companies: Sequence[str], where: Filter | None,
        order: Sequence[tuple[str, bool]], skip: int, limit: int | None, picks: Sequence[str] | None = None,
    ) -> tuple[str, list[Any], str]:  # fmt: skip
        """find's statement, its parameters and its index hint; call inside ``_transaction``."""
        layout = self._layouts[collection]
        arrays = self._arrays(collection, self._key_fields(collection, where))
        cond, params = self._compiled(collection, companies, where, arrays)
        hint = self._hint(collection, companies, where, arrays, order, skip, limit)
        columns = "doc"
        if picks is not None:  # see _from_keys: (key, array text, other JSON value) per field
            columns = ", ".join(["id"] + [self._pick_sql(layout, f) for f in picks])
        sql = f"SELECT {columns} FROM {_quote_ident(collection)} {hint} WHERE {cond} ORDER BY {self._order_sql(collection, order)}"
        if limit is not None or skip:
            sql += f" LIMIT {int(limit) if limit is not None else -1} OFFSET {max(int(skip), 0)}"
        return sql, params, hint

    @staticmethod
    def _pick_sql(layout: _Layout, field: str) -> str:
        """A key field's three columns for ``_from_keys``; SQLite reads the row itself only for the
        JSON value of an object, or of an array the index has no text of."""
        key, text = layout.keys[field], layout.texts.get(field)
        markers = f"{_OBJECT}" if text else f"{_OBJECT}, {_ARRAY}"
        return f"{key}, {text or 'NULL'}, CASE WHEN {key} IN ({markers}) THEN json_extract(doc, {_jpath(_segments(field))}) END"

    async def count(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int:
        table = self._table(collection)
        with self._transaction(self._probed(collection, where)):
            cond, params = self._scope(collection, companies, where)
            return self._execute(f"SELECT COUNT(*) FROM {table} WHERE {cond}", params).fetchone()[0]

    async def distinct(
        self, collection: str, field: str, *, companies: Sequence[str], where: Filter | None = None
    ) -> list[Any]:
        table = self._table(collection)
        with self._transaction(self._probed(collection, where)):
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
        n = len(companies)  # the company parameters come first: ?1 .. ?n
        cond, params = _where(companies, None, extra=f"id = ?{n + 1}" + ("" if expected_rev is None else f" AND rev = ?{n + 2}"))
        params.append(id)
        if expected_rev is not None:
            params.append(int(expected_rev))
        return self._execute(f"DELETE FROM {table} WHERE {cond}", params).rowcount == 1

    async def delete_many(self, collection: str, *, companies: Sequence[str], where: Filter | None = None) -> int:
        table = self._table(collection)
        with self._transaction(self._probed(collection, where), write=True):
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
