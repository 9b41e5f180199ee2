"""Golden trees: each case's specs compile to exactly the committed lock and generated files.

``make golden`` (SPECGATE_UPDATE_GOLDEN=1) rewrites the expectations; review that diff like code.
"""

import os
import shutil
from pathlib import Path

import pytest

from specgate_codegen.compiler import compile_tree

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_compiles_to_expected_tree(case: Path, tmp_path: Path) -> None:
    shutil.copytree(case / "schemas", tmp_path / "schemas")
    _, artefacts = compile_tree(tmp_path / "schemas", tmp_path)
    produced = dict(artefacts)
    expected_dir = case / "expected"
    if os.environ.get("SPECGATE_UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        for path, data in produced.items():
            (expected_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / path).write_bytes(data)
    expected = tree(expected_dir)
    assert sorted(produced) == sorted(expected)
    for path in expected:
        assert produced[path].decode() == expected[path].decode(), path
