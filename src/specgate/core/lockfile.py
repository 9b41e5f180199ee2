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
from .ir import Action, Api, Attributes, BatchRequest, EndpointVersion, Service
from .versions import parse_key

FORMAT = 1


def to_data(api: Api) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "digest": api.digest,
        "max_version": str(api.max_version),
        "services": {
            sname: {"actions": {aname: _action(a) for aname, a in service.actions.items()}}
            for sname, service in api.services.items()
        },
    }


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
        services[sname] = Service(sname, actions)
    return Api(data["digest"], parse_key(data["max_version"]), services)
