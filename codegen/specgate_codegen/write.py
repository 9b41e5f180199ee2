"""Apply generated artefacts to a project root, or check that the committed ones are fresh.

Managed paths are the lock file and everything under ``_generated/`` (bytecode caches aside); a file
there that the generator would not write is an orphan.
"""

from __future__ import annotations

from pathlib import Path

from .emit import GENERATED_DIR, LOCK_FILE


def _managed(root: Path) -> set[str]:
    found = {LOCK_FILE} if (root / LOCK_FILE).is_file() else set()
    gen = root / GENERATED_DIR
    if gen.is_dir():
        found |= {
            p.relative_to(root).as_posix()
            for p in gen.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
    return found


def check(root: Path, artefacts: list[tuple[str, bytes]]) -> list[str]:
    """One line per stale, missing or orphaned file; empty when everything is fresh."""
    problems = []
    wanted = dict(artefacts)
    for path, data in sorted(wanted.items()):
        target = root / path
        if not target.is_file():
            problems.append(f"missing: {path}")
        elif target.read_bytes() != data:
            problems.append(f"stale: {path}")
    problems += [f"orphaned: {path}" for path in sorted(_managed(root) - wanted.keys())]
    return problems


def apply(root: Path, artefacts: list[tuple[str, bytes]]) -> list[str]:
    """Write what changed and delete orphans; returns the paths touched."""
    touched = []
    wanted = dict(artefacts)
    for path, data in sorted(wanted.items()):
        target = root / path
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            touched.append(path)
    for path in sorted(_managed(root) - wanted.keys()):
        (root / path).unlink()
        touched.append(path)
    return touched
