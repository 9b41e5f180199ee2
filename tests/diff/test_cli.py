"""``specgate diff`` as CI uses it: inputs of every form, exit codes, label approval, selections."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from specgate.cli import main

from .conftest import write_tree

ROOT = Path(__file__).resolve().parents[2]

BASE = """
_definitions { item { type: object, properties { id { type: string } } } }
get {
  "2.1" {
    request { type: object, required: [id], properties { id { type: string }, mode { type: string, enum: [a, b] } } }
    response { type: object, properties { item { "$ref": "#/definitions/item" } } }
  }
}
"""
BREAKING = BASE.replace("enum: [a, b]", "enum: [a]")
SAFE = BASE.replace("enum: [a, b]", "enum: [a, b, c]")


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, Path]:
    return {
        name: write_tree(tmp_path / name, {"svc.conf": text})
        for name, text in (("base", BASE), ("breaking", BREAKING), ("safe", SAFE))
    }


def test_identical_trees_pass_with_no_findings(trees, diff_json) -> None:
    code, report = diff_json(trees["base"], trees["base"])
    assert code == 0
    assert report["findings"] == []


def test_breaking_change_fails_and_names_rule_endpoint_pin_and_line(trees, diff_json) -> None:
    code, report = diff_json(trees["base"], trees["breaking"])
    assert code == 1
    [f] = report["findings"]
    assert (f["rule"], f["level"], f["endpoint"], f["pins"]) == ("req.enum.value-removed", "breaking", "svc.get", ["2.1"])
    assert f["location"] == "/request/properties/mode/enum"
    assert f["source"] == {"file": "breaking/svc.conf", "line": 5}
    assert report["summary"]["breaking"] == 1


def test_fail_on_lowers_the_bar(trees, diff_json) -> None:
    assert diff_json(trees["base"], trees["safe"])[0] == 0
    code, report = diff_json(trees["base"], trees["safe"], "--fail-on", "safe")
    assert code == 1
    assert [f["rule"] for f in report["findings"]] == ["req.enum.value-added"]
    assert diff_json(trees["base"], trees["breaking"], "--fail-on", "none")[0] == 0


def test_allow_breaking_reports_but_does_not_fail(trees, diff_json) -> None:
    code, report = diff_json(trees["base"], trees["breaking"], "--allow-breaking")
    assert code == 0
    assert report["findings"][0]["tags"] == ["existing-version", "waived-by-label"]
    assert report["summary"]["waived"] == 1


def test_only_and_exclude_select_endpoints(trees, diff_json) -> None:
    assert diff_json(trees["base"], trees["breaking"], "--exclude", "svc.*")[1]["findings"] == []
    assert diff_json(trees["base"], trees["breaking"], "--only", "other.*")[0] == 0
    assert diff_json(trees["base"], trees["breaking"], "--only", "svc.get")[0] == 1


def test_lock_file_is_a_base_like_the_tree_it_was_compiled_from(trees, tmp_path, diff_json) -> None:
    from specgate_codegen.compiler import compile_tree

    shutil.copy(ROOT / "schemas" / "errors.conf", trees["base"] / "errors.conf")
    _, artefacts = compile_tree(trees["base"], tmp_path)
    lock = tmp_path / "base.lock.json"
    lock.write_bytes(dict(artefacts)["specgate.lock.json"])
    from_tree = diff_json(trees["base"], trees["breaking"])[1]["findings"]
    from_lock = diff_json(lock, trees["breaking"])[1]["findings"]
    assert [(f["rule"], f["pins"], f["location"]) for f in from_lock] == [(f["rule"], f["pins"], f["location"]) for f in from_tree]
    assert diff_json(f"lock:{lock}", trees["breaking"])[0] == 1


def test_git_revisions_are_inputs(tmp_path, capsys) -> None:
    repo = tmp_path / "repo"
    write_tree(repo / "schemas", {"svc.conf": BASE})
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (repo / "schemas" / "svc.conf").write_text(BREAKING)
    subprocess.run([*git, "commit", "-qam", "break"], check=True)
    args = ["diff", "--root", str(repo), "--format", "json"]
    assert main([*args, "git:HEAD~1", "git:HEAD"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["rule"] for f in report["findings"]] == ["req.enum.value-removed"]
    assert report["findings"][0]["source"]["file"] == "schemas/svc.conf"
    assert main([*args, "git:HEAD~1:schemas", "schemas"]) == 1
    capsys.readouterr()
    assert main([*args, "git:HEAD", "schemas"]) == 0
    assert main([*args, "git:no-such-rev", "schemas"]) == 3
    assert "no-such-rev" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, message",
    [
        ("get { \"2.1\" { request { type: object }, response { \"$ref\": \"#/definitions/nope\" } } }", "names no definition"),
        ("get { \"2.1\" { internal: true, request { type: object }, response { type: object } } }", "attribute-in-version"),
        ("get { \"2.x\" { request { type: object }, response { type: object } } }", "bad-version-key"),
        ("get { \"2.1\" { request { type: object ", "never closed"),
    ],
    ids=["dangling-ref", "attribute-in-version", "bad-version-key", "parse-error"],
)
def test_unreadable_input_exits_3_with_the_reason(trees, tmp_path, capsys, text: str, message: str) -> None:
    bad = write_tree(tmp_path / "bad", {"svc.conf": text})
    assert main(["diff", str(trees["base"]), str(bad)]) == 3
    err = capsys.readouterr().err
    assert message in err or message.replace("-", " ") in err


def test_missing_side_and_bad_lock_exit_3(trees, tmp_path, capsys) -> None:
    assert main(["diff", str(tmp_path / "nope"), str(trees["base"])]) == 3
    (tmp_path / "bad.json").write_text('{"format": 99}')
    assert main(["diff", str(tmp_path / "bad.json"), str(trees["base"])]) == 3
    assert "not a specgate lock file" in capsys.readouterr().err


def test_usage_errors_exit_2(trees, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["diff", str(trees["base"]), str(trees["base"]), "--fail-on", "sometimes"])
    assert e.value.code == 2
    assert main(["diff", str(trees["base"]), str(trees["base"]), "--released-max", "two"]) == 2


def test_rules_lists_every_rule_with_its_level(capsys) -> None:
    from specgate_codegen.diff.rules import RULES

    assert main(["diff", "--rules", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["rule"]: r["level"] for r in rows} == {r.id: r.level for r in RULES.values()}
    assert main(["diff", "--rules"]) == 0
    text = capsys.readouterr().out
    assert "req.prop.added-required" in text and "breaking" in text


def test_project_tree_matches_its_committed_lock(capsys) -> None:
    """What CI runs first: the committed lock and schemas/ describe the same API."""
    assert main(["diff", "--root", str(ROOT), "--fail-on", "info", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_github_format_writes_outputs_and_summary(trees, tmp_path, monkeypatch, capsys) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["diff", str(trees["base"]), str(trees["breaking"]), "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("::error file=breaking/svc.conf,line=5,title=req.enum.value-removed::svc.get")
    assert "breaking=1" in out.read_text().splitlines()
    assert "req.enum.value-removed" in summary.read_text()


def test_git_revisions_bring_their_dialect_profiles(tmp_path, capsys) -> None:
    repo = tmp_path / "repo"
    bound = BASE.replace("get {", '_default { dialect: w }\nget {').replace(
        '"2.1" {', '"2.1" {\n    http { method: GET, path: "/items/{id:string}" }', 1
    )
    write_tree(repo / "schemas", {"svc.conf": bound})
    write_tree(repo / "schemas" / "dialects", {"w.conf": 'mount: "/w"\npin: "2.1"\n'})
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (repo / "schemas" / "svc.conf").write_text(bound.replace("/items/", "/item/"))
    assert main(["diff", "--root", str(repo), "--format", "json", "git:HEAD", "schemas"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [f["rule"] for f in report["findings"]] == ["http.binding-changed"]
