"""errors.conf → checked catalogue entries (status, subcode, name, message).

Layout (ClearML's): ``<status> { _: "<status name>", <subcode>: ["<name>", "<message>"] }``. Names
must be unique across the catalogue because each becomes a constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import hocon
from .diagnostics import Diagnostics

FILE = "errors.conf"


@dataclass(frozen=True)
class Entry:
    status: int
    subcode: int
    name: str
    text: str


def build(directory: Path, root: Path, diags: Diagnostics) -> list[Entry]:
    path = directory / FILE
    if not path.is_file():
        return []
    parsed = hocon.parse_all([path], root, diags)[path]
    if parsed is None:
        return []
    file, lines = hocon.rel(path, root), hocon.locate(path.read_text())
    entries: list[Entry] = []
    seen: dict[str, tuple[int, int]] = {}
    for status, block in parsed.tree.items():
        where = lines.get((status,), 0)
        if not (status.isdigit() and 100 <= int(status) <= 599 and isinstance(block, dict)):
            diags.add(file, where, "bad-error-entry", f"{status!r} is not an HTTP status with a block of subcodes")
            continue
        for sub, value in block.items():
            line = lines.get((status, sub), where)
            if sub == "_":
                continue
            if not (sub.isdigit() and isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                diags.add(file, line, "bad-error-entry", f"{status}/{sub} must be a numeric subcode with [name, message]")
                continue
            name, text = value
            if not name.isidentifier():
                diags.add(file, line, "bad-error-entry", f"{status}/{sub}: name {name!r} is not an identifier")
            elif name in seen:
                diags.add(file, line, "duplicate-error-name", f"{status}/{sub}: name {name!r} is already {seen[name][0]}/{seen[name][1]}")
            else:
                seen[name] = (int(status), int(sub))
                entries.append(Entry(int(status), int(sub), name, text))
    return sorted(entries, key=lambda e: (e.status, e.subcode))
