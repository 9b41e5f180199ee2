"""Canonical JSON bytes and content hashes: every generated artefact is byte-reproducible through here."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Sorted keys, no ASCII escaping, ``\\n`` line ends; compact unless ``indent`` is given."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=indent, separators=separators)


def digest(value: Any) -> str:
    """sha256 hex of the canonical compact JSON of ``value``."""
    return hashlib.sha256(dumps(value).encode()).hexdigest()


def schema_key(schema: Any) -> str:
    """The short content key a schema is stored under in the validator table."""
    return digest(schema)[:20]
