"""Broken specs: every problem is reported at once, naming file, line, endpoint and version; exit 3."""

import textwrap
from pathlib import Path

import pytest

from specgate.cli import main

GOOD = """
ok {
    "2.1" {
        request { type: object }
        response { type: object }
    }
}
"""


def write(root: Path, name: str, text: str) -> None:
    (root / "schemas").mkdir(exist_ok=True)
    (root / "schemas" / name).write_text(textwrap.dedent(text).lstrip())


def compile_errors(root: Path, capsys: pytest.CaptureFixture) -> list[str]:
    assert main(["compile", "--root", str(root)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[-1].endswith("in the specs")
    return err[:-1]


CASES = {
    "unparsable": (
        """
        a {
            "2.1" { request { type: object }
        }
        """,
        "svc.conf:1: error hocon-syntax: [svc.a] unparsable HOCON: '{' opened here is never closed",
    ),
    "unknown include": (
        """
        _definitions { include "_missing.conf" }
        """ + GOOD,
        'svc.conf:1: error unknown-include: include "_missing.conf" names no file',
    ),
    "unresolvable substitution": (
        """
        a {
            "2.1": ${_definitions.nowhere}
        }
        """,
        "svc.conf:2: error unresolved-substitution: [svc.a 2.1] ${_definitions.nowhere} names nothing",
    ),
    "unresolvable ref": (
        """
        a {
            "2.1" {
                request { type: object, properties { p { "$ref": "#/definitions/ghost" } } }
                response { type: object }
            }
        }
        """,
        'svc.conf:3: error unresolved-ref: [svc.a 2.1] "$ref": "#/definitions/ghost" names no definition',
    ),
    "version key not MAJOR.MINOR": (
        """
        a {
            "v2.1" { request { type: object }, response { type: object } }
        }
        """,
        "svc.conf:2: error bad-version-key: [svc.a v2.1] version key 'v2.1' is not MAJOR.MINOR",
    ),
    "leading zero in version key": (
        """
        a {
            "2.01" { request { type: object }, response { type: object } }
        }
        """,
        "svc.conf:2: error bad-version-key: [svc.a 2.01]",
    ),
    "neither request nor batch_request": (
        """
        a {
            "2.1" { response { type: object } }
        }
        """,
        "svc.conf:2: error missing-request: [svc.a 2.1] version has neither request nor batch_request",
    ),
    "missing response": (
        """
        a {
            "2.1" { request { type: object } }
        }
        """,
        "svc.conf:2: error missing-response: [svc.a 2.1] version has no response",
    ),
    "base version that does not exist": (
        """
        a {
            "2.1" { request { type: object }, response { type: object } }
            "2.5": ${a."2.3"} { request.properties.x { type: string } }
        }
        """,
        'svc.conf:3: error unknown-base: [svc.a 2.5] ${a."2.3"}: svc.a has no version 2.3 to inherit from',
    ),
    "invalid JSON Schema": (
        """
        a {
            "2.1" { request { type: object }, response { type: strng } }
        }
        """,
        "svc.conf:2: error bad-schema: [svc.a 2.1] response: invalid JSON Schema at type",
    ),
    "batch naming no action": (
        """
        a {
            "2.1" { batch_request { action: nothing, version: 2.1 }, response { type: object } }
        }
        """,
        "svc.conf:2: error bad-batch-request: [svc.a 2.1] batch_request names no action of svc: 'nothing'",
    ),
}


@pytest.mark.parametrize("text,expected", CASES.values(), ids=CASES.keys())
def test_each_problem_names_file_line_endpoint_and_version(text, expected, tmp_path, capsys):
    write(tmp_path, "svc.conf", text)
    errors = compile_errors(tmp_path, capsys)
    assert any(line.startswith(f"schemas/{expected}") for line in errors), errors
    assert not (tmp_path / "specgate.lock.json").exists()


def test_all_problems_of_all_files_are_reported_in_one_run(tmp_path, capsys):
    write(tmp_path, "alpha.conf", CASES["missing response"][0] + CASES["unresolvable ref"][0].replace("a {", "b {"))
    write(tmp_path, "beta.conf", CASES["base version that does not exist"][0])
    write(tmp_path, "gamma.conf", CASES["unparsable"][0])
    write(tmp_path, "delta.conf", GOOD)
    errors = compile_errors(tmp_path, capsys)
    codes = sorted(line.split(" error ")[1].split(":")[0] for line in errors)
    assert codes == ["hocon-syntax", "missing-response", "unknown-base", "unresolved-ref"]
    assert [line.split(":")[0] for line in errors] == [
        "schemas/alpha.conf", "schemas/alpha.conf", "schemas/beta.conf", "schemas/gamma.conf",
    ]


def test_a_dangling_base_does_not_hide_other_problems_of_the_same_file(tmp_path, capsys):
    write(tmp_path, "svc.conf", """
        a {
            "2.1" { request { type: object }, response { type: object } }
            "2.5": ${a."2.3"} { request.properties.x { type: string } }
            "2.6" { request { type: object } }
        }
        """)
    errors = compile_errors(tmp_path, capsys)
    assert len(errors) == 2
    assert "unknown-base: [svc.a 2.5]" in errors[0]
    assert "missing-response: [svc.a 2.6]" in errors[1]


def test_error_catalogue_problems_are_reported(tmp_path, capsys):
    write(tmp_path, "svc.conf", GOOD)
    write(tmp_path, "errors.conf", """
        400 {
            _: "bad_request"
            12: ["validation_error", "validation error"]
            13: ["validation_error", "again"]
            14: "not a pair"
        }
        """)
    errors = compile_errors(tmp_path, capsys)
    assert errors == [
        "schemas/errors.conf:4: error duplicate-error-name: 400/13: name 'validation_error' is already 400/12",
        "schemas/errors.conf:5: error bad-error-entry: 400/14 must be a numeric subcode with [name, message]",
    ]
