"""One sorted list of findings rendered as text, canonical JSON, a Markdown changelog or GitHub annotations.

Every format reads the same records, so they never disagree; findings are sorted by
``Finding.sort_key`` first, so the same report always gives the same bytes.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from itertools import groupby
from typing import Any, Callable, Iterable, Mapping

from specgate.core import canonical

from .model import LEVELS, Finding, Report

FORMATS = ("text", "json", "markdown", "github")
APPROVAL_LABEL = "api-breaking-approved"
MARKER = "<!-- specgate-diff -->"
"""First line of the Markdown report, so a CI job can find and update its own PR comment."""

_SEVERE_FIRST = tuple(reversed(LEVELS))
_HEADINGS = {"breaking": "Breaking", "dangerous": "Dangerous", "safe": "New and changed", "info": "Other"}
_ANSI = {"breaking": "1;31", "dangerous": "33", "safe": "32", "info": "2"}
_KINDS = ("error", "warning", "notice")  # GitHub shows only the first few of each kind: most severe first
_NEW_KEY_RULES = ("version.inserted", "version.added-unreleased", "version.released")


def render(
    report: Report, fmt: str, *, color: bool = False, quiet: bool = False, include_info: bool = False
) -> str:
    """``report`` in format ``fmt``; ``quiet`` (text only) keeps the count line, ``include_info`` is for github."""
    report = replace(report, findings=sorted(report.findings, key=Finding.sort_key))
    if fmt == "json":
        return canonical.dumps(report.to_json(), indent=2) + "\n"
    if fmt == "text":
        return _text(report, color=color, quiet=quiet)
    if fmt == "markdown":
        return _markdown(report)
    if fmt == "github":
        return _github(report, include_info=include_info)
    raise ValueError(f"unknown format {fmt!r}: choose from {', '.join(FORMATS)}")


def github_outputs(report: Report, env: Mapping[str, str] = os.environ) -> None:
    """Append the Markdown report to ``$GITHUB_STEP_SUMMARY`` and the counts to ``$GITHUB_OUTPUT``."""
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as out:
            out.write(render(report, "markdown"))
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.write("".join(f"{name}={n}\n" for name, n in report.summary().items()))


# --- shared pieces ---------------------------------------------------------------------------------


def pin_range(pins: list[str]) -> str:
    """Pins as people read them: ``2.13–2.20`` for more than two, else ``2.13, 2.15``."""
    return f"{pins[0]}–{pins[-1]}" if len(pins) > 2 else ", ".join(pins)


def _value(v: Any, limit: int = 80) -> str:
    if v is None:
        return "—"
    text = canonical.dumps(v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _headline(f: Finding) -> str:
    """``ENDPOINT MESSAGE``, without naming the endpoint twice when the message already starts with it."""
    message = _one_line(f.message) or f.rule
    if not f.endpoint or message.startswith(f.endpoint):
        return message
    return f"{f.endpoint} {message}"


def _waived_by(f: Finding) -> str | None:
    if f.waiver:
        return f"waiver {f.waiver.get('id')}: {_one_line(f.waiver.get('reason'))}"
    if "waived-by-label" in f.tags:
        return f"label {APPROVAL_LABEL}"
    return None


def _counts(report: Report) -> str:
    s = report.summary()
    counts = ", ".join(f"{s[name]} {name}" for name in (*_SEVERE_FIRST, "waived"))
    verdict = "fails" if report.failing() else "passes"
    return f"specgate diff: {counts} — {verdict} at --fail-on {report.fail_on}"


def _failure_note(report: Report) -> list[str]:
    n = sum(1 for f in report.failing() if f.level == "breaking")
    if not n:
        return []
    return [
        f"{n} breaking finding{'s' if n != 1 else ''} fail{'s' if n == 1 else ''} this run. "
        f"To accept {'it' if n == 1 else 'them'}, "
        f"add the PR label `{APPROVAL_LABEL}` (this run only) or a waiver "
        f"(`specgate diff --emit-waivers` prints ready-to-edit stubs)."
    ]


def _expired_note(w: dict[str, Any]) -> str:
    n = len(w.get("findings", []))
    return f"expired waiver {w.get('id')} (expired {w.get('expires')}): {n} finding(s) count again"


def _stale_note(w: dict[str, Any]) -> str:
    return f"stale waiver {w.get('id')}: matches no finding; remove it"


def _waiver_notes(report: Report) -> list[str]:
    return [*map(_expired_note, report.expired_waivers), *map(_stale_note, report.stale_waivers)]


def _by_level(findings: list[Finding]) -> Iterable[tuple[str, list[Finding]]]:
    for level in _SEVERE_FIRST:
        group = [f for f in findings if f.level == level]
        if group:
            yield level, group


# --- text ------------------------------------------------------------------------------------------


def _text(report: Report, *, color: bool, quiet: bool) -> str:
    def paint(text: str, level: str) -> str:
        return f"\x1b[{_ANSI[level]}m{text}\x1b[0m" if color else text

    lines = [_counts(report)]
    if quiet:
        return lines[0] + "\n"
    for level, group in _by_level(report.findings):
        lines += ["", paint(f"{level.upper()} ({len(group)})", level)]
        for endpoint, findings in groupby(group, key=lambda f: f.endpoint):
            lines.append(f"  {endpoint or '(whole API)'}")
            for f in findings:
                lines += _text_block(f, paint)
    notes = _waiver_notes(report) + _failure_note(report)
    return "\n".join(lines + ([""] if notes else []) + notes) + "\n"


def _text_block(f: Finding, paint: Callable[[str, str], str]) -> list[str]:
    pins = f"[{pin_range(f.pins)}]" if f.pins else ""
    head = "  ".join(x for x in (paint(f.rule, f.level), pins, f.location) if x)
    block = [f"    {head}"]
    if f.old is not None or f.new is not None:
        block.append(f"      {_value(f.old)} → {_value(f.new)}")
    block.append(f"      {_one_line(f.message)}")
    if f.hint:
        block.append(f"      hint: {f.hint}")
    if f.source:
        block.append(f"      at {f.source.get('file')}:{f.source.get('line')}")
    if f.tags:
        block.append(f"      tags: {', '.join(f.tags)}")
    if waived := _waived_by(f):
        block.append(f"      accepted by {waived}")
    return block


# --- markdown --------------------------------------------------------------------------------------


def _md(text: str | None) -> str:
    return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_item(f: Finding, *, endpoint: bool = False) -> str:
    location = f.location and _code(f.location)
    where = (_code(f.endpoint) if endpoint else "", _code(f.rule), pin_range(f.pins), location)
    line = " · ".join(p for p in where if p) + f" — {_md(f.message)}"
    if f.old is not None or f.new is not None:
        line += f" ({_code(_value(f.old))} → {_code(_value(f.new))})"
    if waived := _waived_by(f):
        line += f" _Accepted by {_md(waived)}_"
    elif f.hint and f.level in ("breaking", "dangerous"):
        line += f" _Hint: {_md(f.hint)}_"
    return line


def _md_level(group: list[Finding]) -> list[str]:
    lines: list[str] = []
    shared = [f for f in group if f.root_cause]
    for cause, findings in groupby(sorted(shared, key=lambda f: f.root_cause), key=lambda f: f.root_cause):
        findings = list(findings)
        rules = ", ".join(_code(r) for r in sorted({f.rule for f in findings}))
        endpoints = sorted({f.endpoint for f in findings})
        lines += [
            f"- **{_code(cause)}** ({rules}) — {_md(findings[0].message)}",
            f"  <details><summary>{len(endpoints)} affected endpoint(s)</summary>",
            "",
            *(f"  - {_md_item(f, endpoint=True)}" for f in findings),
            "",
            "  </details>",
        ]
    own = [f for f in group if not f.root_cause]
    for service, findings in groupby(own, key=lambda f: f.endpoint.split(".")[0]):
        lines += ["", f"#### {_md(service) or 'whole API'}", ""]
        for endpoint, items in groupby(findings, key=lambda f: f.endpoint):
            lines.append(f"- **{_code(endpoint)}**" if endpoint else "- **whole API**")
            lines += [f"  - {_md_item(f)}" for f in items]
    return lines


def _markdown(report: Report) -> str:
    lines = [MARKER, f"## {_md(_counts(report))}", ""]
    base, head = report.base.get("ref"), report.head.get("ref")
    if base or head:
        released = f" (released max {report.base['released_max']})" if report.base.get("released_max") else ""
        lines += [f"Base {_code(str(base))}{released} → head {_code(str(head))}", ""]
    if not report.findings:
        lines += ["No changes.", ""]
    for level, group in _by_level(report.findings):
        lines += [f"### {_HEADINGS[level]} ({len(group)})", ""]
        body = _md_level(group)
        if level == "info":
            summary = f"<details><summary>{len(group)} informational finding(s)</summary>"
            body = [summary, "", *body, "", "</details>"]
        lines += body + [""]
    lines += _migration_notes(report.findings)
    notes = _waiver_notes(report)
    if notes:
        lines += ["### Waivers", "", *(f"- {_md(n)}" for n in notes), ""]
    lines += _failure_note(report)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))  # sections add blank lines freely; keep one
    return text.rstrip("\n") + "\n"


def _key_order(key: str) -> tuple[int, ...]:
    return tuple(int(x) for x in key.split("."))


def _bullets(findings: list[Finding]) -> list[str]:
    return [f"- {_md(_headline(f))}" for f in findings]


def _migration_notes(findings: list[Finding]) -> list[str]:
    """Per new version key: what it introduces, what clients moving their pin there gain and must adapt to."""
    keys: dict[str, list[Finding]] = {}
    for f in findings:
        if f.rule in _NEW_KEY_RULES:
            for key in f.pins or [str(f.new)]:
                keys.setdefault(key, []).append(f)
    if not keys:
        return []
    lines = ["### Migration notes", ""]
    for key in sorted(keys, key=_key_order):
        at_key = [f for f in findings if key in f.pins and not f.rule.startswith(("version.", "doc.", "lint."))]
        gain = [f for f in at_key if f.default_level in ("info", "safe")]
        adapt = [f for f in at_key if f.default_level in ("dangerous", "breaking")]
        lines += [f"#### {key}", "", *_bullets(keys[key]), ""]
        for verb, items in (("gain", gain), ("must adapt to", adapt)):
            if items:
                lines += [f"Clients moving their pin to {key} {verb}:", "", *_bullets(items), ""]
    return lines


# --- github ----------------------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, message: str, **props: Any) -> str:
    given = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items() if v not in (None, ""))
    return f"::{kind}{' ' + given if given else ''}::{_escape_data(message)}"


def _github(report: Report, *, include_info: bool) -> str:
    groups: dict[tuple, list[Finding]] = {}
    for i, f in enumerate(report.findings):  # already most severe first: groups keep that order
        if f.level == "info" and not include_info:
            continue
        key = (f.level, f.root_cause, f.rule, _waived_by(f)) if f.root_cause else (i,)
        groups.setdefault(key, []).append(f)
    annotations = [_annotation(group) for group in groups.values()]
    for kind, note, title, items in (
        ("warning", _expired_note, "specgate waiver expired", report.expired_waivers),
        ("notice", _stale_note, "specgate stale waiver", report.stale_waivers),
    ):
        annotations += [(kind, _command(kind, note(w), title=title)) for w in items]
    annotations.sort(key=lambda a: _KINDS.index(a[0]))  # stable: findings keep their order within a kind
    return "".join(line + "\n" for _, line in annotations)


def _annotation(group: list[Finding]) -> tuple[str, str]:
    f = group[0]
    waived = _waived_by(f)
    kind = "notice" if waived else {"breaking": "error", "dangerous": "warning"}.get(f.level, "notice")
    message = _headline(f) + (f" [{pin_range(f.pins)}]" if f.pins else "")
    others = sorted({g.endpoint for g in group} - {f.endpoint})
    if f.root_cause:
        message += f" (root cause {f.root_cause}" + (f"; also {', '.join(others)})" if others else ")")
    if waived:
        message += f" — {f.level}, accepted by {waived}"
    source = f.source or {}
    return kind, _command(kind, message, file=source.get("file"), line=source.get("line"), title=f.rule)
