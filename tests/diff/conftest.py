"""Run ``specgate diff`` in-process, the way CI runs it, and hand back the exit code and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from specgate.cli import main


def write_tree(directory: Path, files: dict[str, str]) -> Path:
    """A spec tree from {file name: HOCON text}."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture
def diff_json(capsys) -> Callable[..., tuple[int, dict[str, Any]]]:
    """``diff_json(base, head, *flags)`` → (exit code, parsed ``--format json`` report)."""

    def run(base: Path | str, head: Path | str, *flags: str) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = main(["diff", str(base), str(head), "--format", "json", "--today", "2026-01-15", *flags])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else {}

    return run
