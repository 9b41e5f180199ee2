"""The only pyhocon importer: parse a service file with its includes and ``${}`` substitutions.

pyhocon forgets where things were written, skips a missing include silently and stops at the first
unresolvable substitution. This module fills those gaps: it scans the text for includes and
substitutions itself (so every problem is reported, with its line), keeps a locator from key paths to
lines, and caches parsed trees by the content hash of a file and everything it includes, since pyhocon
needs about a second for tasks.conf.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specgate.core.progress import Progress

from .diagnostics import Diagnostics

logging.getLogger("pyhocon").setLevel(logging.ERROR)  # its include warnings become our diagnostics

CACHE_FORMAT = "1"
_SUBST = re.compile(r"\$\{(\?)?\s*([^}]+?)\s*\}")
_TOKEN = re.compile(
    r'"""[\s\S]*?"""+|"(?:\\.|[^"\\\n])*"|//[^\n]*|#[^\n]*|\$\{[^}]*\}|[{}\[\]:=,\n]|[^\s{}\[\]:=,"]+'
)


@dataclass(frozen=True)
class Parsed:
    tree: dict[str, Any]
    files: tuple[Path, ...]  # the file itself, then every file it includes


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def split_path(path: str) -> list[str]:
    """Split a HOCON key path on dots outside quotes: ``get_all."2.1"`` → [get_all, 2.1]."""
    return [p.strip('"') for p in re.findall(r'"[^"]*"|[^.]+', path)]


def includes(path: Path) -> list[tuple[int, str, Path]]:
    """(line, name as written, resolved path) for every include statement of a file."""
    text = path.read_text()
    toks = [m for m in _TOKEN.finditer(text) if m.group() != "\n"]
    found = []
    for i, m in enumerate(toks):
        if m.group() != "include":
            continue
        j = i + 1
        while j < len(toks) and toks[j].group() in ("required(", "file("):
            j += 1
        if j < len(toks) and toks[j].group().startswith('"'):
            name = toks[j].group().strip('"')
            found.append((line_of(text, m.start()), name, path.parent / name))
    return found


def include_closure(path: Path, diags: Diagnostics, root: Path) -> list[Path]:
    """The file and all files it includes, transitively; a missing include is a diagnostic."""
    seen: list[Path] = []
    stack = [path]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        for line, name, target in includes(current):
            if target.is_file():
                stack.append(target)
            else:
                diags.add(rel(current, root), line, "unknown-include", f'include "{name}" names no file')
    return seen


def rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def locate(text: str, duplicates: list[tuple[tuple[str, ...], int]] | None = None) -> dict[tuple[str, ...], int]:
    """Map each key path (components unquoted, dotted keys split) to the line it is first written on.

    An object concatenated to a substitution (``"2.13": ${x} { ... }``) belongs to the key before it.
    With ``duplicates``, also collect (path, line) of every key written again for an object outside
    arrays: HOCON merges such objects silently.
    """
    found: dict[tuple[str, ...], int] = {}
    stack: list[tuple[str, ...]] = [()]
    brackets: list[str] = []
    in_array = [False]  # per open object: whether it sits inside an array (its keys repeat legitimately)
    last_key: tuple[str, ...] = ()
    toks = [(m.group(), m.start()) for m in _TOKEN.finditer(text)]
    at_statement = True
    line = 1
    for i, (tok, pos) in enumerate(toks):
        if i:
            line += toks[i - 1][0].count("\n")  # counted as we go: line_of per key is quadratic
        nxt = next((t for t, _ in toks[i + 1 : i + 3] if t != "\n"), "")
        if tok == "{":
            stack.append(last_key if not at_statement else stack[-1])
            in_array.append(in_array[-1] or bool(brackets) and brackets[-1] == "[")
            brackets.append("{")
            at_statement = True
        elif tok == "}":
            if len(stack) > 1:
                stack.pop()
                in_array.pop()
            if brackets:
                brackets.pop()
            at_statement = True
        elif tok in ("[", "]"):
            if tok == "[":
                brackets.append("[")
            elif brackets:
                brackets.pop()
        elif tok in ("\n", ","):
            at_statement = True
        elif tok.startswith(("//", "#")):
            continue
        elif at_statement and nxt in (":", "=", "{") and not tok.startswith("${"):
            key = stack[-1] + tuple(split_path(tok))
            if key in found and duplicates is not None and not in_array[-1]:
                duplicates.append((key, line))
            found.setdefault(key, line)
            last_key = key
            at_statement = False
        else:
            at_statement = False
    return found


def unbalanced(text: str) -> tuple[int, str] | None:
    """The line and description of the first bracket that is never closed, or closed by the wrong one."""
    pairs = {"}": "{", "]": "["}
    stack: list[tuple[str, int]] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok in ("{", "["):
            stack.append((tok, m.start()))
        elif tok in pairs:
            if not stack or stack[-1][0] != pairs[tok]:
                return line_of(text, m.start()), f"unexpected '{tok}'"
            stack.pop()
    if stack:
        tok, at = stack[-1]
        return line_of(text, at), f"'{tok}' opened here is never closed"
    return None


def owner(lines: dict[tuple[str, ...], int], line: int) -> tuple[str, str]:
    """The (action, version key) whose block encloses ``line`` of a service file, as far as known."""
    def last(candidates):
        best = max(((ln, k) for k, ln in candidates if ln <= line), default=None)
        return best[1] if best else None

    action = last((k, ln) for k, ln in lines.items() if len(k) == 1 and not k[0].startswith("_"))
    if action is None:
        return "", ""
    version = last((k, ln) for k, ln in lines.items() if len(k) == 2 and k[0] == action[0])
    return action[0], version[1] if version else ""


def substitutions(text: str) -> list[tuple[int, str, bool]]:
    """(line, path, optional) for every ``${path}`` written in a file, comments excluded."""
    out = []
    line, last = 1, 0
    for m in _TOKEN.finditer(text):
        if m.group().startswith("${"):
            s = _SUBST.fullmatch(m.group())
            if s:
                line += text.count("\n", last, m.start())
                last = m.start()
                out.append((line, s[2], bool(s[1])))
    return out


def _exists(tree: Any, path: list[str]) -> bool | None:
    """Whether ``path`` names a key of an unresolved tree; None when an unresolved value hides it."""
    from pyhocon import ConfigTree

    node = tree
    for part in path:
        if not isinstance(node, ConfigTree):
            return None
        key = next((k for k in node if k.strip('"') == part), None)
        if key is None:
            return False
        node = node[key]
    return True


def _plain(value: Any) -> Any:
    from pyhocon import ConfigTree

    if isinstance(value, ConfigTree):
        return {k.strip('"'): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class HoconError(Exception):
    """A small standalone HOCON file (configuration, waivers) that cannot be read."""


def parse_plain(path: Path) -> dict[str, Any]:
    """A standalone HOCON or JSON file as plain dicts and lists, substitutions resolved."""
    import pyhocon
    from pyhocon.exceptions import ConfigException
    from pyparsing import ParseBaseException

    try:
        return _plain(pyhocon.ConfigFactory.parse_file(str(path), resolve=True))
    except (OSError, ConfigException, ParseBaseException) as e:
        raise HoconError(str(e)) from None


def _cache_dir() -> Path | None:
    if os.environ.get("SPECGATE_NO_CACHE"):
        return None
    base = os.environ.get("SPECGATE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specgate"
    )
    return Path(base) / "hocon"


def _cache_key(files: list[Path]) -> str:
    import pyhocon

    h = hashlib.sha256(f"{CACHE_FORMAT}:{getattr(pyhocon, '__version__', '?')}".encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def parse_all(paths: list[Path], root: Path, diags: Diagnostics) -> dict[Path, Parsed | None]:
    """Parse service files, from the cache where their content was seen before.

    Cache misses are parsed in worker processes when there are several: pyhocon is pure Python and
    files are independent, so a cold compile uses every core.
    """
    results: dict[Path, Parsed | None] = {}
    misses: list[tuple[Path, list[Path], Path | None]] = []
    cache = _cache_dir()
    for path in paths:
        files = include_closure(path, diags, root)
        cached = cache / f"{_cache_key(files)}.json" if cache else None
        if cached and cached.is_file():
            results[path] = Parsed(json.loads(cached.read_text()), tuple(files))
        else:
            misses.append((path, files, cached))
    first: dict[Path, tuple[Path, list[Path], Path | None]] = {}
    for miss in misses:  # files of identical content (two sides of a diff) are parsed once
        first.setdefault(miss[2] or miss[0], miss)
    jobs = [(path, files, root) for path, files, _ in first.values()]
    progress = Progress("parsing", len(jobs))
    if len(jobs) > 1 and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(len(jobs), os.cpu_count() or 1)) as pool:
            outcomes = {}
            for key, outcome in zip(first, pool.map(_parse_job, jobs)):
                outcomes[key] = outcome
                progress.step(key.name)
    else:
        outcomes = {}
        for key, job in zip(first, jobs):
            outcomes[key] = _parse_job(job)
            progress.step(key.name)
    if jobs:
        progress.close()
    for path, files, cached in misses:
        tree, found = outcomes[cached or path]
        if found and first[cached or path][0] != path:
            tree, found = _parse_job((path, files, root))  # its own diagnostics, with its own file names
        for d in found:
            diags.add(d.file, d.line, d.code, d.message, d.endpoint, d.version)
        results[path] = None if tree is None else Parsed(tree, tuple(files))
        if tree is not None and cached and not found and not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(tree))
            tmp.replace(cached)
    return results


def _parse_job(job: tuple[Path, list[Path], Path]) -> tuple[dict | None, list]:
    path, files, root = job
    diags = Diagnostics()
    with warnings.catch_warnings():  # pyhocon logs a missing include with the deprecated Logger.warn
        warnings.simplefilter("ignore", DeprecationWarning)
        return _parse_uncached(path, files, root, diags), diags.items


def _parse_uncached(path: Path, files: list[Path], root: Path, diags: Diagnostics) -> dict | None:
    """One full parse; only when it fails are the files examined one by one to report every problem."""
    from pyhocon import ConfigFactory
    from pyhocon.exceptions import ConfigException
    from pyparsing import ParseBaseException

    try:
        return _plain(ConfigFactory.parse_file(str(path), resolve=True))
    except (ConfigException, ParseBaseException, RecursionError) as e:
        before = len(diags.items)
        patched = _diagnose(path, files, root, diags)
        if len(diags.items) == before:
            diags.add(rel(path, root), 0, "hocon", f"cannot resolve the specs: {e}")
    if patched is None:
        return None
    try:  # the rest of the file is still checked, with dangling substitutions read as empty objects
        return _plain(ConfigFactory.parse_string(patched, basedir=str(path.parent), resolve=True))
    except (ConfigException, ParseBaseException, RecursionError):
        return None


def _diagnose(path: Path, files: list[Path], root: Path, diags: Diagnostics) -> str | None:
    """Syntax errors per file (so the message names the broken file), then every dangling ``${}``.

    Returns the service text with its dangling substitutions blanked (lines kept), when that is the
    only trouble, so that the remaining checks can still run over the file.
    """
    from pyhocon import ConfigFactory
    from pyhocon.exceptions import ConfigException
    from pyparsing import ParseBaseException

    before = len(diags.items)
    lines = locate(path.read_text())

    def at(f: Path, line: int) -> tuple[str, str]:
        action, version = owner(lines, line) if f == path else ("", "")
        return (f"{path.stem}.{action}" if action else "", version)

    for f in files:
        if found := unbalanced(f.read_text()):
            line, message = found
            diags.add(rel(f, root), line, "hocon-syntax", f"unparsable HOCON: {message}", *at(f, line))
            continue
        try:
            ConfigFactory.parse_string(f.read_text(), basedir=str(f.parent), resolve=False)
        except ParseBaseException as e:
            message = f"unparsable HOCON: {e.msg} (column {e.col})"
            diags.add(rel(f, root), e.lineno, "hocon-syntax", message, *at(f, e.lineno))
        except (ConfigException, RecursionError) as e:
            diags.add(rel(f, root), 0, "hocon-syntax", f"unparsable HOCON: {e}")
    if len(diags.items) > before:
        return None
    text = path.read_text()
    dangling: set[str] = set()
    unresolved = ConfigFactory.parse_file(str(path), resolve=False)
    for f in files:
        for line, subst, optional in substitutions(f.read_text()):
            parts = split_path(subst)
            if optional or _exists(unresolved, parts) is not False:
                continue
            endpoint, version = at(f, line)
            if f == path:
                dangling.add(subst)
            if len(parts) == 2 and _exists(unresolved, parts[:1]) and not parts[0].startswith("_"):
                message = f"${{{subst}}}: {path.stem}.{parts[0]} has no version {parts[1]} to inherit from"
                diags.add(rel(f, root), line, "unknown-base", message, endpoint, version)
            else:
                message = f"${{{subst}}} names nothing"
                diags.add(rel(f, root), line, "unresolved-substitution", message, endpoint, version)
    if len(diags.items) == before or any(d.file != rel(path, root) for d in diags.items[before:]):
        return None
    return _SUBST.sub(lambda m: "{}" if m[2] in dangling else m[0], text)
