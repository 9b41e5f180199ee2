"""REST bindings are checked at compile time: a bad binding is a diagnostic with file, line and endpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from specgate_codegen.compiler import compile_tree
from specgate_codegen.diagnostics import SpecError

ROOT = Path(__file__).resolve().parents[2]
DIALECT = 'mount: "/x"\npin: "1.0"\n'


def compile_with(tmp_path: Path, service: str, dialect: str = DIALECT):
    schemas = tmp_path / "schemas"
    (schemas / "dialects").mkdir(parents=True)
    shutil.copy(ROOT / "schemas" / "errors.conf", schemas)
    (schemas / "dialects" / "x.conf").write_text(dialect)
    (schemas / "x_items.conf").write_text(service)
    return compile_tree(schemas, tmp_path)


def version(http: str, request: str = "{ type: object, properties { id { type: integer } } }") -> str:
    return f'"1.0" {{ http {{ {http} }}, request {request}, response {{ type: object }} }}'


def test_bindings_compile_into_the_lock_and_a_route_table(tmp_path) -> None:
    api, artefacts = compile_with(tmp_path, "_default { dialect: x }\nget { " + version('method: GET, path: "/items/{id:int}"') + " }")
    assert api.dialects["x"].mount == "/x"
    assert api.services["x_items"].actions["get"].versions[0].http.path == "/items/{id:int}"
    assert str(api.max_version) == "0.0"  # dialect version numbers never move the RPC maximum
    dispatch = dict(artefacts)["src/specgate/_generated/dispatch.json"].decode()
    assert '"path": "/items/{id:int}"' in dispatch and '"endpoint": "x_items.get"' in dispatch


@pytest.mark.parametrize(
    "service, message",
    [
        ("get { " + version('method: GET, path: "/a"') + " }", "without _default.dialect"),
        ("_default { dialect: y }\nget { " + version('method: GET, path: "/a"') + " }", "no schemas/dialects/y.conf"),
        ("_default { dialect: x }\nget { " + version('method: GET, path: "/a/{nope:int}"') + " }", "{nope} is not a property"),
        ("_default { dialect: x }\nget { " + version('method: GET, path: "/a/{id:float}"') + " }", "unknown type 'float'"),
        ("_default { dialect: x }\nget { " + version('method: GET, path: "/a", kind: list') + " }", "needs http.pagination"),
        ("_default { dialect: x }\nget { " + version('method: DELETE, path: "/a", status: 204') + " }", "set kind none"),
        ("_default { dialect: x }\nget { " + version('method: FETCH, path: "/a"') + " }", "http.method must be"),
        (
            "_default { dialect: x }\na { " + version('method: GET, path: "/items/{id:int}"') + " }\n"
            "b { " + version('method: GET, path: "/items/{other:int}"', "{ type: object, properties { other { type: integer } } }") + " }",
            "also matches x_items.a",
        ),
    ],
    ids=["no-dialect", "unknown-dialect", "undeclared-param", "bad-param-type", "list-without-pagination",
         "204-with-body", "bad-method", "collision"],
)
def test_bad_bindings_are_reported(tmp_path, service: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        compile_with(tmp_path, service)
    assert message in str(e.value)
    assert "x_items.conf:" in str(e.value)


def test_bad_dialect_profile_is_reported(tmp_path) -> None:
    with pytest.raises(SpecError) as e:
        compile_with(tmp_path, "_default { dialect: x }\nget { " + version('method: GET, path: "/a"') + " }",
                     'mount: "/x/"\npin: "1.0"\n')
    assert "mount must be" in str(e.value)
