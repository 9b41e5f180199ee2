"""`specgate compile --check`: exit 1 on stale, missing or orphaned artefacts; 0 when fresh."""

import shutil
from pathlib import Path

import pytest

from specgate.cli import main

CASE = Path(__file__).parent.parent / "golden" / "cases" / "attributes_drafts" / "schemas"
GENERATED = "src/specgate/_generated"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(CASE, tmp_path / "schemas")
    assert main(["compile", "--root", str(tmp_path)]) == 0
    return tmp_path


def check(root: Path, capsys) -> tuple[int, str]:
    code = main(["compile", "--check", "--root", str(root)])
    return code, capsys.readouterr().err


def test_fresh_tree_passes(project, capsys):
    assert check(project, capsys)[0] == 0


def test_hand_edited_table_is_stale(project, capsys):
    target = project / GENERATED / "dispatch.json"
    target.write_text(target.read_text().replace('"root"', '"anyone"'))
    code, err = check(project, capsys)
    assert code == 1 and f"stale: {GENERATED}/dispatch.json" in err


def test_changed_spec_makes_every_artefact_stale(project, capsys):
    spec = project / "schemas" / "jobs.conf"
    spec.write_text(spec.read_text().replace("default: 5", "default: 6"))
    code, err = check(project, capsys)
    assert code == 1
    assert "stale: specgate.lock.json" in err and f"stale: {GENERATED}/validators.json" in err


def test_missing_and_orphaned_files_are_named(project, capsys):
    (project / "specgate.lock.json").unlink()
    (project / GENERATED / "old_table.json").write_text("{}")
    code, err = check(project, capsys)
    assert code == 1
    assert "missing: specgate.lock.json" in err and f"orphaned: {GENERATED}/old_table.json" in err


def test_compile_repairs_what_check_reports(project, capsys):
    (project / GENERATED / "old_table.json").write_text("{}")
    (project / "specgate.lock.json").write_text("{}")
    assert main(["compile", "--root", str(project)]) == 0
    assert not (project / GENERATED / "old_table.json").exists()
    assert check(project, capsys)[0] == 0


def test_missing_spec_directory_is_an_input_error(tmp_path, capsys):
    assert main(["compile", "--root", str(tmp_path)]) == 3
    assert "spec directory not found" in capsys.readouterr().err
