"""Load one side of a diff: a spec directory, a tree at a git revision, or a lock file.

Every form ends as the same IR (``specgate.core.ir.Api``); tree sides also keep the parsed services and
their texts, which lints and source annotations need and a lock does not record.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specgate.core import lockfile
from specgate.core.progress import Progress
from specgate.core.ir import Api

from .. import build, hocon, sources
from ..build import Located
from ..diagnostics import Diagnostics


class InputError(Exception):
    """A side could not be read or compiled (exit 3)."""


@dataclass
class Side:
    ref: str
    api: Api
    located: dict[str, Located] = field(default_factory=dict)  # service name → parsed file; empty for locks

    @property
    def is_tree(self) -> bool:
        return bool(self.located)

    def bases(self) -> dict[tuple[str, str], str]:
        """(``service.action``, key) → the ``${}`` path a version block inherits from, as written."""
        out = {}
        for sname, s in self.located.items():
            text = s.texts[s.file]
            for line, path, _ in hocon.substitutions(text):
                action, key = hocon.owner(s.lines, line)
                if key and s.line(action, key) == line:
                    out[(f"{sname}.{action}", key)] = ".".join(hocon.split_path(path))
        return out


def load(ref: str, root: Path) -> Side:
    """``DIR`` | ``LOCK.json`` | ``git:REV[:subdir]`` | ``lock:FILE`` | ``lock:REV:FILE``."""
    return load_all([ref], root)[0]


def load_all(refs: list[str], root: Path) -> list[Side]:
    """Several sides at once: the HOCON files of every tree are parsed in one process pool, so a cold
    diff of two trees costs about one cold compile rather than two."""
    found = [_locate(ref, root) for ref in refs]
    trees = [sources.load(d, r) for d, r in (f for f in found if isinstance(f, tuple))]
    files = sorted({f for t in trees for f in (*t.services, *([t.api_defaults] if t.api_defaults else []))})
    if len(trees) > 1:
        hocon.parse_all(files, root, Diagnostics())  # fills the parse cache; problems are reported per side below
    return [Side(ref, f) if isinstance(f, Api) else _tree(ref, *f) for ref, f in zip(refs, found)]


def _locate(ref: str, root: Path) -> Api | tuple[Path, Path]:
    """A lock as IR, or a tree as (directory, root for relative file names)."""
    if ref.startswith("git:"):
        rev, _, subdir = ref[4:].partition(":")
        return _tree_from_git(ref, root, rev, subdir or "schemas")
    if ref.startswith("lock:"):
        rest = ref[5:]
        if ":" in rest:
            rev, _, file = rest.partition(":")
            return _decode(ref, _git(root, "show", f"{rev}:{file}"))
        return _decode(ref, _read(root / rest, ref))
    path = root / ref
    if path.is_dir():
        return path, path.parent
    if path.is_file():
        return _decode(ref, _read(path, ref))
    raise InputError(f"{ref}: no such spec directory or lock file")


def _tree(ref: str, directory: Path, root: Path) -> Side:
    diags = Diagnostics()
    api, located = build.build_located(sources.load(directory, root), diags)
    if api is None or diags:
        raise InputError(f"{ref}: the specs do not compile\n{diags.render()}")
    return Side(ref, api, {s.name: s for s in located})


def _tree_from_git(ref: str, root: Path, rev: str, subdir: str) -> tuple[Path, Path]:
    """Materialise every ``*.conf`` of ``subdir`` at ``rev`` so includes resolve as they did there."""
    listing = _git(root, "ls-tree", "-r", "--name-only", f"{rev}:{subdir}").decode().splitlines()
    names = [n for n in listing if n.endswith(".conf")]  # dialect profiles live in dialects/
    if not names:
        raise InputError(f"{ref}: no .conf files in {subdir} at {rev}")
    scratch = Path(tempfile.mkdtemp(prefix="specgate-diff-"))
    directory = scratch / subdir
    progress = Progress(f"reading {rev}:{subdir}", len(names))
    for name in names:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(_git(root, "show", f"{rev}:{subdir}/{name}"))
        progress.step(name)
    progress.close()
    return directory, scratch


def _git(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise InputError("git is not installed") from None
    if done.returncode != 0:
        raise InputError(f"git {' '.join(args)}: {done.stderr.decode().strip()}")
    return done.stdout


def _read(path: Path, ref: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{ref}: {e.strerror}") from None


def _decode(ref: str, raw: bytes) -> Api:
    try:
        data: Any = json.loads(raw)
        return lockfile.decode(data)
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{ref}: not a specgate lock file ({e})") from None
