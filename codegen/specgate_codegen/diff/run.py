"""One ``specgate diff`` run: load both sides, compare, lint, adjust levels, locate, waive."""

from __future__ import annotations

import fnmatch
import re
from datetime import date
from pathlib import Path

from . import inputs, lints, modifiers, waivers
from .compare import Comparison, Released, to_findings
from ..build import Located
from .inputs import Side
from .model import Finding, Report
from .rules import hint

REMOVALS = {
    "service.removed", "action.removed", "action.unavailable-for-pins", "version.removed", "resp.prop.moved",
    "req.prop.removed-open", "req.prop.removed-closed", "resp.prop.removed-required", "resp.prop.removed-optional",
}  # fmt: skip
"""Findings whose source is the base side: what they point at no longer exists in head."""
from .settings import DiffSettings
from .structure import tree_findings


def run(base_ref: str, head_ref: str, settings: DiffSettings, root: Path) -> Report:
    today = date.fromisoformat(settings.today) if settings.today else date.today()
    base, head = inputs.load_all([base_ref, head_ref], root)
    release_lock = inputs.load(settings.release_lock, root).api if settings.release_lock else None
    maximum = settings.released_max or base.api.max_version
    released = Released(maximum, release_lock, base.api)
    found = Comparison(base.api, head.api, settings, released).run() + lints.introduced(base, head) + tree_findings(base, head)
    found = modifiers.apply(found, base.api, settings, released, today)
    findings = [f for f in to_findings(found) if _selected(f.endpoint, settings)]
    for f in findings:
        f.hint = f.hint or (hint(f.rule) if f.level in ("breaking", "dangerous") else None)
        f.source = _source(f, head, base)
    findings.sort(key=Finding.sort_key)
    expired, stale = [], []
    if settings.waivers:
        accepted = waivers.load(root / settings.waivers, today=today, max_days=settings.max_waiver_days)
        expired, stale = waivers.apply(findings, accepted, today)
    if settings.allow_breaking:
        for f in findings:
            if f.level == "breaking" and f.waiver is None:
                f.tag("waived-by-label")
    return Report(
        base={"ref": base_ref, "released_max": str(maximum)},
        head={"ref": head_ref},
        fail_on=settings.fail_on,
        findings=findings,
        expired_waivers=expired,
        stale_waivers=stale,
    )


def _selected(endpoint: str, settings: DiffSettings) -> bool:
    if settings.only and not any(fnmatch.fnmatchcase(endpoint, g) for g in settings.only):
        return False
    return not any(fnmatch.fnmatchcase(endpoint, g) for g in settings.exclude)


def _source(f: Finding, head: Side, base: Side) -> dict | None:
    """Where the change is written: the head file, or the base file for removals."""
    removal = f.rule in REMOVALS
    for side in ((base, head) if removal else (head, base)):
        service = side.located.get(f.endpoint.split(".")[0])
        if service is None:
            continue
        action = f.endpoint.partition(".")[2]
        pin = f.pins[0] if f.pins else ""
        if f.rule == "lint.duplicate-key":
            return {"file": service.file, "line": f.new}
        if f.root_cause:
            name, _, path = f.root_cause.removeprefix("definitions/").partition("/")
            needle, near = (path.rsplit("/", 1)[-1] or name), ("_definitions", name)
        else:
            segments = f.location.split("/")
            named = [i + 1 for i, seg in enumerate(segments[:-1]) if seg == "properties"]
            needle = segments[named[-1]] if named else ""
            near = (action, pin) if pin else (action,)
        if needle:
            file, line = _key_line(service, needle, near)
        else:
            file, line = service.file, service.line(*near) or service.line(action) or 1
        return {"file": file, "line": line}
    return None


def _key_line(service: Located, key: str, near: tuple[str, ...]) -> tuple[str, int]:
    """The first line at or after ``near`` where ``key`` is written as a key, in the file or its includes."""
    pattern = re.compile(rf'(?<![\w$"-])"?{re.escape(key)}"?\s*[:={{]')
    start = service.line(*near)
    for file, text in sorted(service.texts.items(), key=lambda item: item[0] != service.file):
        lines = text.splitlines()
        for number in [*range(start, len(lines) + 1), *range(1, start)] if file == service.file else range(1, len(lines) + 1):
            if number and pattern.search(lines[number - 1]):
                return file, number
    return service.file, start or 1
