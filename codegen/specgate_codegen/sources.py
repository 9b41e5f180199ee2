"""Which files make up a spec tree, and the digest of their contents.

ClearML's layout is used as it is: a flat folder of service ``*.conf`` files, ``_*.conf`` includes, and
``_api_defaults.conf`` with the API-wide attribute defaults. ``errors.conf`` is the error catalogue, not
a service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

API_DEFAULTS = "_api_defaults.conf"
NOT_SERVICES = {"errors.conf"}


@dataclass(frozen=True)
class SpecTree:
    root: Path  # paths in diagnostics are relative to this (the project root)
    directory: Path
    services: tuple[Path, ...]
    api_defaults: Path | None
    digest: str


def load(directory: Path, root: Path | None = None) -> SpecTree:
    directory = directory.resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"spec directory not found: {directory}")
    files = sorted(p for p in directory.glob("*.conf") if p.is_file())
    services = tuple(p for p in files if not p.name.startswith("_") and p.name not in NOT_SERVICES)
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    defaults = directory / API_DEFAULTS
    return SpecTree(
        root=(root or directory.parent).resolve(),
        directory=directory,
        services=services,
        api_defaults=defaults if defaults.is_file() else None,
        digest=h.hexdigest(),
    )
