"""Turning an HTTP request into call data, as ClearML's server does (contract §1.1, §1.3, §1.4).

Pure functions: the path grammar, query-string merging and body parsing, including json-lines batches.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from specgate._generated import errors as E
from specgate.core.errors import ApiError

PATH = re.compile(
    r"/(?:v(?P<version>\d\d+|\d+\.\d+)/)?(?P<service>[A-Za-z_][A-Za-z0-9_]+)\.(?P<action>[A-Za-z_][A-Za-z0-9_]+)/?"
)
BATCH_TYPE = "application/json-lines"
# Nesting a body may use (objects and arrays, the body itself counting 1). ClearML's clients nest a few
# levels; deeper values would only reach the recursive code after parsing (null dropping, storage
# encoders, orjson's own 255-level limit when writing) and fail there as 500s instead of here as a 400.
MAX_DEPTH = 100
_NUMBER = re.compile(r"\d+(\.\d*)?|\.\d+")


def _convert(value: str) -> Any:
    """Query values: digits with at most one dot become numbers, true/false booleans, else strings."""
    if _NUMBER.fullmatch(value):
        if "." in value:
            return float(value)
        number = int(value)
        return number if number < 2**64 else value  # past 64 bits: left a string, for the validator to name
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    return value


def merge_query(data: dict[str, Any], query: str) -> dict[str, Any]:
    """Merge query parameters into the body (they win): dotted keys nest, repeats and ``key[]`` make lists."""
    if not query:
        return data
    pairs = parse_qsl(query, keep_blank_values=True)
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    lists: dict[str, list] = {}
    for key, value in pairs:
        name = key.rstrip("[]")
        if counts[key] > 1 or key.endswith("[]"):
            lists.setdefault(name, []).append(_convert(value))
        else:
            _set_path(data, name, _convert(value))
    for name, values in lists.items():
        _set_path(data, name, values)
    return data


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    if len(parents) >= MAX_DEPTH - 1:
        raise ApiError(E.BAD_REQUEST, f"query parameter nests deeper than {MAX_DEPTH} levels")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def parse_body(body: bytes) -> dict[str, Any]:
    """A single call's body: any JSON object; falsy JSON (or nothing) means ``{}``.

    Invalid JSON, invalid UTF-8 and nesting deeper than ``MAX_DEPTH`` are 400s. A key repeated in one
    object is not an error: the last one wins, as in orjson, Python's ``json`` and ClearML's server.
    """
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ApiError(E.BAD_REQUEST, f"could not parse the JSON body: {e}") from None
    check_depth(body, data)
    if not data:
        return {}
    if not isinstance(data, dict):
        raise ApiError(E.BAD_REQUEST, f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def parse_batch(body: bytes) -> list[dict[str, Any]]:
    """A json-lines body: one JSON object a line; a single JSON object is a batch of one."""
    items = []
    for i, line in enumerate(body.splitlines()):
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise ApiError(E.BAD_REQUEST, f"could not parse the JSON in batch item #{i}: {e}") from None
        if not isinstance(item, dict):
            raise ApiError(E.BAD_REQUEST, f"json lines must contain objects, found {type(item).__name__} in batch item #{i}")
        check_depth(line, item, f" in batch item #{i}")
        items.append(item)
    return items


def check_depth(raw: bytes, data: Any, where: str = "") -> None:
    """Refuse a parsed body nested deeper than ``MAX_DEPTH``; a body with fewer brackets is not walked."""
    if type(data) not in (dict, list) or raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    stack = [(data, 1)]
    while stack:  # iterative: the point is not to recurse
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(E.BAD_REQUEST, f"the JSON body nests deeper than {MAX_DEPTH} levels{where}")
        children = node.values() if type(node) is dict else node
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))


async def read_body(receive: Any, headers: dict[str, str], limit: int) -> bytes:
    """The whole body, refused with 413 before it is read when it is declared (or grows) over ``limit``."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(E.REQUEST_TOO_LARGE, limit=limit, size=int(declared))
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(E.REQUEST_TOO_LARGE, limit=limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
