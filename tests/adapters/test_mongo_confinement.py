"""Raw MongoDB stays in ``specgate/adapters/mongo.py``, and that module keeps to the forms that are
right on both MongoDB and nx-27017 (shared/docs/mongo-test-server.md, "Keeping honest")."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "specgate"
MONGO_MODULE = SRC / "adapters" / "mongo.py"

DRIVER_MODULES = {"pymongo", "motor", "bson", "mongomock"}
# constructs nx-27017 gets wrong or that need transactions / slow paths
FORBIDDEN_CALLS = {"start_transaction", "with_transaction", "count_documents", "find_one_and_update", "rename"}
FORBIDDEN_KEYWORDS = {"array_filters", "arrayFilters", "upsert"}
FORBIDDEN_OPERATORS = {"$not", "$lookup", "$push", "$where", "$elemMatch", "$slice", "$[]", "$sortByCount", "$facet"}
MONGO_OPERATORS = {"$in", "$nin", "$all", "$and", "$or", "$regex", "$exists", "$set", "$match", "$count"}


def _string_constants(tree: ast.AST) -> set[str]:
    """String constants, docstrings excluded."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_raw_mongodb_outside_the_adapter() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == MONGO_MODULE:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError:
            continue  # a module being edited; its own tests will say so
        if _imports(tree) & DRIVER_MODULES:
            offenders.append(f"{path.relative_to(SRC)} imports {sorted(_imports(tree) & DRIVER_MODULES)}")
        operators = _string_constants(tree) & (MONGO_OPERATORS | FORBIDDEN_OPERATORS)
        if operators:
            offenders.append(f"{path.relative_to(SRC)} builds MongoDB queries: {sorted(operators)}")
    assert not offenders, offenders


def test_adapter_keeps_to_the_safe_subset() -> None:
    tree = ast.parse(MONGO_MODULE.read_text(encoding="utf-8"))
    assert "motor" not in _imports(tree)
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    keywords = {kw.arg for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords}
    assert not calls & FORBIDDEN_CALLS
    assert not keywords & FORBIDDEN_KEYWORDS
    assert not _string_constants(tree) & FORBIDDEN_OPERATORS
