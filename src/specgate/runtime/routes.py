"""A dialect's route table: path templates compiled to regular expressions, literal segments first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_TYPES = {
    "int": r"[0-9]+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "objectid": r"[0-9a-fA-F]{24}",
    "string": r"[^/]+",
}


@dataclass(frozen=True)
class Route:
    endpoint: str
    key: str
    method: str
    template: str
    pattern: re.Pattern
    params: dict[str, str]  # name → type
    binding: dict[str, Any]  # status, body, kind, pagination, nulls


def compile_route(entry: dict[str, Any], trailing_slash: str) -> Route:
    template = entry["path"]
    if trailing_slash == "optional":
        template = template.rstrip("/") or "/"
    regex, params, at = "", {}, 0
    for m in _PARAM.finditer(template):
        regex += re.escape(template[at : m.start()]) + f"(?P<{m[1]}>{_TYPES[m[2] or 'string']})"
        params[m[1]] = m[2] or "string"
        at = m.end()
    regex += re.escape(template[at:])
    if trailing_slash == "optional" and template != "/":
        regex += "/?"
    binding = {k: entry.get(k) for k in ("status", "body", "kind", "pagination", "nulls")}
    return Route(entry["endpoint"], entry["key"], entry["method"], entry["path"], re.compile(regex), params, binding)


class Router:
    """Finds the route of (method, path); tells a wrong method (405) from no route at all (404)."""

    def __init__(self, routes: list[Route]):
        # literal paths before parameterised ones, more literal text first: /tasks/paginate beats /tasks/{id}
        self.routes = sorted(routes, key=lambda r: (len(r.params), -len(_PARAM.sub("", r.pattern.pattern))))

    def find(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path parameters, whether the path exists for some other method)."""
        other = False
        for route in self.routes:
            m = route.pattern.fullmatch(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict(), False
            other = True
        return None, {}, other
