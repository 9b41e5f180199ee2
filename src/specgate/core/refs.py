"""Reading effective schemas through their local ``$ref``s (shared by the compiler and the runtime)."""

from __future__ import annotations

from typing import Any

DEFINITIONS = "#/definitions/"


def root_properties(schema: dict[str, Any]) -> dict[str, Any]:
    """The top-level properties of an effective schema, through a root ``$ref`` to one of its definitions
    (a request written as ``{"$ref": "#/definitions/task_ref"}``)."""
    for _ in range(8):
        ref = schema.get("$ref")
        if not (isinstance(ref, str) and ref.startswith(DEFINITIONS)):
            break
        definitions = schema.get("definitions")
        schema = {**(definitions or {}).get(ref[len(DEFINITIONS):], {}), "definitions": definitions}
    return schema.get("properties") or {}
