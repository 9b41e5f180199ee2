"""get_all semantics shared by tasks, projects and queues (contract §8), as store-port filters.

A ``QuerySpec`` says which request keys are pattern, list, range and datetime fields for an entity;
``build`` turns a validated get_all request into filters, order, paging and projection. Nothing here
knows a backend: the result is a ``Query`` of port filters.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import orjson

from specgate._generated import errors as E
from specgate.adapters.ports import All, And, Empty, Eq, Exists, Filter, In, NotIn, Or, Range, Regex
from specgate.core.clock import to_iso
from specgate.core.errors import ApiError

MAX_PAGE_SIZE = 500
# Bounds on one query, so that no request can make a store work for minutes: values across all its
# filters (each one a bound parameter), conditions (each ``__$all`` value, ``_any_`` field or excluded
# ``filters`` value is one, tested row by row), and fields to sort by (MongoDB takes 32 sort keys, and
# the store adds ``id``).
MAX_FILTER_VALUES = 10_000
MAX_FILTER_TERMS = 1_000
MAX_ORDER_FIELDS = 16
_BAD_FIELD = re.compile(r"(^|\.)(\$|\.|$)|[\"'\\\x00-\x1f]")


@dataclass(frozen=True)
class QuerySpec:
    pattern: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    list_prefixes: tuple[str, ...] = ()  # e.g. "hyperparams." : any key under them is a list field
    ranges: tuple[str, ...] = ()
    range_prefixes: tuple[str, ...] = ()
    datetimes: tuple[str, ...] = ()
    plain_prefixes: tuple[str, ...] = ()


@dataclass
class Query:
    where: Filter | None
    order: list[tuple[str, bool]]
    skip: int
    limit: int
    fields: list[str] | None  # top-level fields for the store; None = all
    projection: list[str] | None  # the dotted paths to keep in the answer; None = everything
    scroll: int | None = None  # the scroll position when scrolling


MAX_REGEX = 512
MAX_UNBOUNDED = 2  # unbounded repetitions in one client pattern (see _unbounded)


def check_field(name: Any) -> str:
    """A client's field path for the store: no empty segment, none starting with ``$``, no quotes or
    control characters (400/14, as ClearML's lookup errors)."""
    if not isinstance(name, str) or not name or _BAD_FIELD.search(name):
        raise ApiError(E.INVALID_FIELDS, err=f"invalid field name {name!r}")
    return name


def check_regex(pattern: str, name: str) -> str:
    """A client's regular expression, refused when it could run for exponential time: Python's engine
    backtracks, and one ``(a+)+$`` against a long name would stall every call of the process."""
    if len(pattern) > MAX_REGEX:
        raise ApiError(E.INVALID_REGEX_ERROR, f"{name}: longer than {MAX_REGEX} characters")
    try:
        parsed = re._parser.parse(pattern)  # the stdlib parser: the same tree re.compile builds
    except re.error as e:
        raise ApiError(E.INVALID_REGEX_ERROR, f"{name}: {e}") from None
    if _nested_repeat(parsed, False):
        raise ApiError(E.INVALID_REGEX_ERROR, f"{name}: a repetition of a repetition or of alternatives that match "
                                              "alike, such as (a+)+ or (a|ab)*, can take exponential time")  # fmt: skip
    if _unbounded(parsed) > MAX_UNBOUNDED:
        raise ApiError(E.INVALID_REGEX_ERROR, f"{name}: more than {MAX_UNBOUNDED} unbounded repetitions (*, +, {{n,}}); "
                                              "each one multiplies the time a search can take by the text's length")  # fmt: skip
    return pattern


def _unbounded(items: Any) -> int:
    """How many repetitions without an upper bound a parsed pattern holds: a search that fails tries
    about n^k ways with k of them (``.*a.*a.*a!`` took 4 s on one 1,000-character name)."""
    count = 0
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            count += (arg[1] is re._parser.MAXREPEAT) + _unbounded(arg[2])
        elif name == "SUBPATTERN":
            count += _unbounded(arg[-1])
        elif name == "BRANCH":
            count += max((_unbounded(branch) for branch in arg[1]), default=0)
        elif name in ("ASSERT", "ASSERT_NOT"):
            count += _unbounded(arg[1])
    return count


def _nested_repeat(items: Any, inside: bool) -> bool:
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            repeats = high is re._parser.MAXREPEAT or high > 1
            if repeats and inside:
                return True
            if _nested_repeat(sub, inside or repeats):
                return True
        elif name == "SUBPATTERN":
            if _nested_repeat(arg[-1], inside):
                return True
        elif name == "BRANCH":
            if inside and not _distinct_heads(arg[1]):
                return True  # (a|a)* backtracks through 2^n ways to match n a's
            if any(_nested_repeat(branch, inside) for branch in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _nested_repeat(arg[1], inside):
                return True
    return False


def _distinct_heads(branches: list) -> bool:
    """Alternatives that each start with a different literal character: no text matches two of them,
    so repeating them cannot backtrack. The parser has already moved common prefixes out, which is
    how (a|a) becomes a followed by two empty alternatives."""
    heads = [b[0][1] if b and str(b[0][0]) == "LITERAL" else None for b in branches]
    return None not in heads and len(set(heads)) == len(heads)


def list_filter(name: str, values: Any) -> Filter | None:
    """The list-field operator language (§8.2): plain, ``-x``, ``__$all``/``__$any``/``__$not``/``__$nop``, null."""
    if not isinstance(values, list):
        values = [values]
    buckets: dict[str, list] = {"in": [], "nin": [], "all": [], "not_all": []}
    empty_in = empty_out = False
    context, global_op, legacy, negate = "or", None, True, False
    for value in values:
        if isinstance(value, str) and value.startswith("__$"):
            op = value[3:]
            if op in ("all", "and", "any", "or"):
                context = "and" if op in ("all", "and") else "or"
                global_op = global_op or context
                legacy = False
            elif op == "not":
                negate = True
                global_op = global_op or "and"
                legacy = False
            elif op == "nop":
                context, legacy = "or", True
            else:
                raise ApiError(E.FIELDS_VALUE_ERROR, f"unsupported operator {value!r}", field=name)
            continue
        exclude = negate
        negate = False
        if value is None:
            if exclude:
                empty_out = True
            else:
                empty_in = True
            continue
        if not isinstance(value, str):
            raise ApiError(E.FIELDS_VALUE_ERROR, "list filter values must be strings", field=name)
        if legacy and value.startswith("-") and not exclude:
            exclude, value = True, value[1:]
        if exclude:
            buckets["nin"].append(value)
        else:
            buckets["all" if context == "and" else "in"].append(value)
    if negate:
        raise ApiError(E.FIELDS_VALUE_ERROR, "__$not must be followed by a value", field=name)
    parts: list[Filter] = []
    if buckets["in"] or empty_in:
        include = [In(name, tuple(dict.fromkeys(buckets["in"])))] if buckets["in"] else []
        if empty_in:
            include.append(Empty(name))
        parts.append(include[0] if len(include) == 1 else Or(tuple(include)))
    if buckets["all"]:
        parts.append(All(name, tuple(dict.fromkeys(buckets["all"]))))
    if buckets["nin"]:
        parts.append(NotIn(name, tuple(dict.fromkeys(buckets["nin"]))))
    if empty_out:
        parts.append(Exists(name, True))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return Or(tuple(parts)) if (global_op or "and") == "or" else And(tuple(parts))


def filters_filter(name: str, spec: dict) -> Filter | None:
    """The structured ``filters`` form: ``{any: {include, exclude}, all: {include, exclude}, op}``."""
    def cond(kind: str, part: str, values: list) -> Filter | None:
        real = tuple(v for v in values if v is not None)
        has_null = len(real) != len(values)
        found: list[Filter] = []
        if kind == "any" and part == "include":
            found += [In(name, real)] if real else []
            found += [Empty(name)] if has_null else []
            return Or(tuple(found)) if len(found) > 1 else (found[0] if found else None)
        if kind == "any" and part == "exclude":  # "not all of": lacks at least one
            found += [NotIn(name, (v,)) for v in real]
            found += [Exists(name, True)] if has_null else []
            return Or(tuple(found)) if len(found) > 1 else (found[0] if found else None)
        if kind == "all" and part == "include":
            found += [All(name, real)] if real else []
            found += [Empty(name)] if has_null else []
        else:
            found += [NotIn(name, real)] if real else []
            found += [Exists(name, True)] if has_null else []
        return And(tuple(found)) if len(found) > 1 else (found[0] if found else None)

    groups = []
    for kind, joiner in (("any", Or), ("all", And)):
        block = spec.get(kind) or {}
        conds = [c for part in ("include", "exclude") if (c := cond(kind, part, block.get(part) or []))]
        if conds:
            groups.append(conds[0] if len(conds) == 1 else joiner(tuple(conds)))
    if not groups:
        return None
    if len(groups) == 1:
        return groups[0]
    return Or(tuple(groups)) if spec.get("op") == "or" else And(tuple(groups))


def range_filter(name: str, bounds: Any) -> Filter:
    if not (isinstance(bounds, list) and len(bounds) == 2) or bounds == [None, None]:
        raise ApiError(E.FIELDS_VALUE_ERROR, "a range is [min, max] with at least one bound", field=name)
    low, high = bounds
    if low is None:
        return Or((Range(name, lte=high), Exists(name, False)))
    return Range(name, gte=low, lte=high) if high is not None else Range(name, gte=low)


_DATE_OP = re.compile(r"^(>=|>|<=|<)?(.*)$")


def _moment(text: str, name: str) -> str:
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text.strip()):
            return to_iso(datetime.fromtimestamp(float(text), tz=timezone.utc))
        return to_iso(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise ApiError(E.FIELDS_VALUE_ERROR, f"invalid date {text!r}", field=name) from None


def datetime_filter(name: str, values: Any) -> Filter:
    values = values if isinstance(values, list) else [values]
    if len(values) == 2 and all(isinstance(v, str) and not _DATE_OP.match(v)[1] for v in values):
        return Range(name, gte=_moment(values[0], name), lte=_moment(values[1], name))
    parts: list[Filter] = []
    for value in values:
        if not isinstance(value, str):
            raise ApiError(E.FIELDS_VALUE_ERROR, "datetime conditions are strings", field=name)
        op, text = _DATE_OP.match(value).groups()
        moment = _moment(text, name)
        key = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}.get(op or "")
        parts.append(Range(name, **{key: moment}) if key else Eq(name, moment))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def multi_field(data: dict, name: str, spec: QuerySpec) -> Filter | None:
    cond = data.get(name)
    if not cond:
        return None
    fields = [check_field(f) for f in cond.get("fields") or []]
    if "pattern" in cond and "datetime" in cond:
        raise ApiError(E.VALIDATION_ERROR, "use either pattern or datetime, not both", field=name)
    if "pattern" in cond:
        pattern = check_regex(cond["pattern"], name)
        parts = tuple(Regex(f, pattern, ignore_case=True) for f in fields)
    elif "datetime" in cond:
        parts = tuple(datetime_filter(f, cond["datetime"]) for f in fields if f in spec.datetimes)
    else:
        return None
    if not parts:
        return None
    return Or(parts) if name in ("_any_", "_or_") else And(parts)


def order(data: dict) -> list[tuple[str, bool]]:
    raw = data.get("order_by") or []
    raw = [raw] if isinstance(raw, str) else raw
    if len(raw) > MAX_ORDER_FIELDS:
        raise ApiError(E.FIELDS_VALUE_ERROR, f"at most {MAX_ORDER_FIELDS} fields to order by", field="order_by")
    out = []
    for item in raw:
        if item == "@text_score":
            if not data.get("search_text"):
                raise ApiError(E.FIELDS_VALUE_ERROR, "text score cannot be used without search_text", field="order_by")
            continue
        out.append((check_field(item[1:]), True) if item.startswith("-") else (check_field(item), False))
    if not any(name == "id" for name, _ in out):
        out.append(("id", out[-1][1] if out else False))  # the store's own tie-break, which its indexes serve
    return out


def paging(data: dict) -> tuple[int, int, int | None]:
    """(skip, limit, scroll position or None) from page/page_size or scroll_id/size, at most 2^62 each
    (the stores count in signed 64 bits: a page of 10^18 was a 500)."""
    skip, limit, position = _paging(data)
    return min(skip, _LARGEST), min(limit, _LARGEST), position


_LARGEST = 2**62


def _paging(data: dict) -> tuple[int, int, int | None]:
    if "scroll_id" in data:
        size = data.get("size")
        if not isinstance(size, int) or size < 1:
            raise ApiError(E.VALIDATION_ERROR, "scrolling needs a positive size", field="size")
        position = decode_scroll(data.get("scroll_id"))
        if data.get("refresh_scroll"):
            return 0, position + size, position
        return position, size, position
    page, size = data.get("page"), data.get("page_size")
    if page is not None and page < 0:
        raise ApiError(E.VALIDATION_ERROR, "page must be >= 0", field="page")
    if size is not None and size < 1:
        raise ApiError(E.VALIDATION_ERROR, "page_size must be >= 1", field="page_size")
    size = min(size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    return (page or 0) * size, size, None


def encode_scroll(position: int) -> str:
    """Scroll ids carry their position, so any gateway process can continue any scroll."""
    return base64.urlsafe_b64encode(orjson.dumps({"p": position})).decode().rstrip("=")


def decode_scroll(scroll_id: Any) -> int:
    if not scroll_id or not isinstance(scroll_id, str):
        return 0
    try:
        position = orjson.loads(base64.urlsafe_b64decode(scroll_id + "=" * (-len(scroll_id) % 4)))["p"]
        return position if isinstance(position, int) and position >= 0 else 0
    except (ValueError, KeyError, TypeError):
        return 0  # an unknown scroll silently starts over, as ClearML's does


def projection(data: dict) -> tuple[list[str] | None, list[str] | None]:
    """(top-level store fields, dotted paths to keep) from ``only_fields``/``projection``."""
    paths = data.get("only_fields") or data.get("projection")
    if not paths:
        return None, None
    keep = [p for p in paths if not p.startswith("-")]
    if not keep:
        return None, None
    return sorted({p.split(".")[0] for p in keep} | {"id"}), keep


def pick(doc: dict, paths: Sequence[str]) -> dict:
    """Only the dotted ``paths`` of a document (nested objects kept as nested objects)."""
    out: dict = {}
    for path in paths:
        parts = path.split(".")
        node: Any = doc
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = node
    return out


def field_filters(data: dict, spec: QuerySpec) -> list[Filter]:
    found: list[Filter] = []
    structured = data.get("filters") or {}
    for key, value in data.items():
        if key in structured:
            continue
        if key in spec.pattern and isinstance(value, str) and value:
            found.append(Regex(key, check_regex(value, key)))
        elif (key in spec.lists or key.startswith(spec.list_prefixes or ("\0",))) and value is not None:
            if (f := list_filter(check_field(key), value)) is not None:
                found.append(f)
        elif key in spec.ranges or (spec.range_prefixes and key.startswith(spec.range_prefixes)):
            found.append(range_filter(check_field(key), value))
        elif key in spec.datetimes and value:
            found.append(datetime_filter(key, value))
        elif spec.plain_prefixes and key.startswith(spec.plain_prefixes):
            found.append(Eq(check_field(key), value))
    for key, value in structured.items():
        if isinstance(value, dict) and (f := filters_filter(check_field(key), value)) is not None:
            found.append(f)
    for name in ("_any_", "_or_", "_all_", "_and_"):
        if (f := multi_field(data, name, spec)) is not None:
            found.append(f)
    return found


def portable(f: Filter) -> Filter:
    """``Empty`` (what a null list value asks for) in the filters every store compiles."""
    if isinstance(f, Empty):
        return Or((Exists(f.field, False), Eq(f.field, "")))
    if isinstance(f, (And, Or)):
        return type(f)(tuple(portable(i) for i in f.items))
    return f


def size(f: Filter) -> int:
    """How many values a filter hands the store (And/Or add theirs up)."""
    if isinstance(f, (And, Or)):
        return sum(size(i) for i in f.items)
    values = getattr(f, "values", None)
    return len(values) if values is not None else 1


def terms(f: Filter) -> int:
    """How many conditions a filter is: an ``In`` list is one, ``All`` one per value."""
    if isinstance(f, (And, Or)):
        return sum(terms(i) for i in f.items)
    return len(f.values) if isinstance(f, All) else 1


def build(data: dict, spec: QuerySpec, extra: Iterable[Filter] = ()) -> Query:
    filters = [portable(f) for f in field_filters(data, spec)] + list(extra)
    if (total := sum(size(f) for f in filters)) > MAX_FILTER_VALUES:
        raise ApiError(E.FIELDS_VALUE_ERROR, f"a query takes at most {MAX_FILTER_VALUES} filter values, not {total}")
    if (total := sum(terms(f) for f in filters)) > MAX_FILTER_TERMS:
        raise ApiError(E.FIELDS_VALUE_ERROR, f"a query takes at most {MAX_FILTER_TERMS} conditions, not {total}")
    skip, limit, scroll = paging(data)
    fields, keep = projection(data)
    where = None if not filters else filters[0] if len(filters) == 1 else And(tuple(filters))
    return Query(where, order(data), skip, limit, fields, keep, scroll)
