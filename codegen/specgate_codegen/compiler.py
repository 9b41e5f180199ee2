"""The whole compile: spec directory → IR → artefacts. Raises SpecError with every problem found."""

from __future__ import annotations

from pathlib import Path

from specgate.core.ir import Api

from . import build, sources
from .diagnostics import Diagnostics, SpecError
from .emit import lockfile, tables


def compile_tree(directory: Path, root: Path | None = None) -> tuple[Api, list[tuple[str, bytes]]]:
    diags = Diagnostics()
    api = build.build(sources.load(directory, root), diags)
    if api is None:
        raise SpecError(diags)
    return api, lockfile.emit(api) + tables.emit(api)
