"""Error catalogue → src/specgate/_generated/errors.py: one ErrorCode constant per entry."""

from __future__ import annotations

from ..errors import Entry
from . import GENERATED_DIR, banner


def emit(entries: list[Entry], digest: str) -> list[tuple[str, bytes]]:
    lines = [f'"""{banner(digest)}"""', ""]
    if entries:
        lines += ["from specgate.core.errors import ErrorCode", ""]
    for e in entries:
        lines.append(f"{e.name.upper()} = ErrorCode({e.status}, {e.subcode}, {e.name!r}, {e.text!r})")
    lines += ["", "BY_CODE = {", *(f"    ({e.status}, {e.subcode}): {e.name.upper()}," for e in entries), "}", ""]
    return [(f"{GENERATED_DIR}/errors.py", "\n".join(lines).encode())]
