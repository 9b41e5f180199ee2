"""``specgate.lock.json``: the canonical, reviewable form of the IR, read back by ``specgate diff``.

Format 1 (names are public; other tools read them)::

    {"format": 1, "digest": sha256-of-inputs, "max_version": "2.xx",
     "services": {service: {"actions": {action: {
         "attributes": {"internal", "authorize" (true/false/null), "allow_roles",
                        "deprecated"?, "sunset"?, "stability"?},
         "versions": {key: {"draft", "request"?, "batch_request"?, "response"}}}}}}}

``batch_request`` is ``{"action", "version", "item"}``: the named action and the schema of one line.
"""

from __future__ import annotations

from typing import Any

from . import canonical
from .ir import Action, Api, Attributes, BatchRequest, Dialect, EndpointVersion, HttpBinding, Service
from .versions import parse_key

FORMAT = 1


def to_data(api: Api) -> dict[str, Any]:
    out = {
        "format": FORMAT,
        "digest": api.digest,
        "max_version": str(api.max_version),
        "services": {sname: _service(service) for sname, service in api.services.items()},
    }
    if api.dialects:
        out["dialects"] = {name: d.to_data() for name, d in api.dialects.items()}
    return out


def _service(service: Service) -> dict[str, Any]:
    out: dict[str, Any] = {"actions": {aname: _action(a) for aname, a in service.actions.items()}}
    if service.dialect:
        out["dialect"] = service.dialect
    return out


def _action(action: Action) -> dict[str, Any]:
    attrs = action.attributes
    return {
        "attributes": {
            "internal": attrs.internal,
            "authorize": attrs.authorize,
            "allow_roles": list(attrs.allow_roles),
            **attrs.lifecycle(),
        },
        "versions": {str(v.key): _version(v) for v in action.versions},
    }


def _version(v: EndpointVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"draft": v.draft, "response": v.response}
    if v.request is not None:
        out["request"] = v.request
    if v.batch_request is not None:
        b = v.batch_request
        out["batch_request"] = {"action": b.action, "version": b.version, "item": b.item}
    if v.http is not None:
        out["http"] = v.http.to_data()
    return out


def encode(api: Api) -> bytes:
    return (canonical.dumps(to_data(api), indent=1) + "\n").encode()


def decode(data: dict[str, Any]) -> Api:
    """Rebuild the IR from lock data (descriptions and sources are not recorded there)."""
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported lock format {data.get('format')!r} (expected {FORMAT})")
    services = {}
    for sname, s in data["services"].items():
        actions = {}
        for aname, a in s["actions"].items():
            at = a["attributes"]
            versions = tuple(
                sorted(
                    (
                        EndpointVersion(
                            key=parse_key(k),
                            response=v["response"],
                            request=v.get("request"),
                            batch_request=BatchRequest(**v["batch_request"]) if "batch_request" in v else None,
                            http=HttpBinding(**v["http"]) if "http" in v else None,
                        )
                        for k, v in a["versions"].items()
                    ),
                    key=lambda ev: ev.key,
                )
            )
            attributes = Attributes(
                at["internal"],
                at["authorize"],
                tuple(at["allow_roles"]),
                at.get("deprecated", False),
                at.get("sunset"),
                at.get("stability", "stable"),
            )
            actions[aname] = Action(aname, attributes, versions)
        services[sname] = Service(sname, actions, dialect=s.get("dialect"))
    dialects = {name: _dialect(name, d) for name, d in (data.get("dialects") or {}).items()}
    return Api(data["digest"], parse_key(data["max_version"]), services, dialects)


def _dialect(name: str, d: dict[str, Any]) -> Dialect:
    return Dialect(
        name=name, mount=d["mount"], pin=parse_key(d["pin"]), aliases=tuple(d["aliases"]), ids=d["ids"],
        auth_schemes=tuple(d["auth"]["schemes"]), anonymous=tuple(d["auth"]["anonymous"]), errors=d["errors"],
        validation_status=d["validation_status"], trailing_slash=d["trailing_slash"],
    )  # fmt: skip
