"""The whole compile: spec directory → IR → artefacts. Raises SpecError with every problem found."""

from __future__ import annotations

from pathlib import Path

from specgate.core.ir import Api

from . import build, errors, sources
from .diagnostics import Diagnostics, SpecError
from .emit import errors as emit_errors
from .emit import lockfile, tables


def compile_tree(directory: Path, root: Path | None = None) -> tuple[Api, list[tuple[str, bytes]]]:
    diags = Diagnostics()
    tree = sources.load(directory, root)
    api = build.build(tree, diags)
    catalogue = errors.build(tree.directory, tree.root, diags)
    if api is None or diags:
        raise SpecError(diags)
    return api, lockfile.emit(api) + tables.emit(api) + emit_errors.emit(catalogue, api.digest)
