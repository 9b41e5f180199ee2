"""Accepted findings: a reviewed, expiring record that a change is intended, matched on structure, never on text.

A waiver names a rule glob plus optional endpoint glob, pin range and pointer glob, or one exact
fingerprint. Invalid files are configuration errors (the CLI exits 2) so that no waiver merges without a
reason, an owner and an expiry; expired waivers stop matching and are reported, unused ones are stale.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from datetime import date, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Iterable

from specgate.core.versions import Version, parse_key

from .config import ConfigError, read_hocon
from .formats import pin_range
from .model import Finding
from .rules import RULES

STUB_REASON = "TODO: explain why this change is acceptable"
STUB_DAYS = 90
_KEYS = ("id", "rule", "endpoint", "versions", "location", "fingerprint", "reason", "owner", "ticket", "expires")
_SELECTORS = ("rule", "endpoint", "versions", "location", "fingerprint")
_PLACEHOLDER = re.compile(r"\b(todo|tbd|fixme|xxx)\b", re.IGNORECASE)
_FINGERPRINT = re.compile(r"sg1:[0-9a-f]{16}")
_COMPARE = ((">=", operator.ge), ("<=", operator.le), (">", operator.gt), ("<", operator.lt))


class WaiverError(ConfigError):
    """An invalid waiver file; ``messages`` lists every problem found."""


def pin_filter(text: str) -> Callable[[Version], bool]:
    """``">=2.25"``, ``"<=2.13"``, ``">2.4"``, ``"<2.4"``, ``"2.13"`` or the inclusive ``"2.4-2.15"``."""
    text = text.replace(" ", "")
    for op, compare in _COMPARE:
        if text.startswith(op):
            bound = parse_key(text[len(op) :])
            return lambda v: compare(v, bound)
    if "-" in text:
        lo, hi = (parse_key(part) for part in text.split("-", 1))
        if lo > hi:
            raise ValueError(f"range {text!r} is empty: {lo} > {hi}")
        return lambda v: lo <= v <= hi
    key = parse_key(text)
    return lambda v: v == key


@dataclass(frozen=True)
class Waiver:
    id: str
    reason: str
    owner: str
    expires: date
    rule: str | None = None
    endpoint: str | None = None
    versions: str | None = None
    location: str | None = None
    fingerprint: str | None = None
    ticket: str | None = None

    def expired(self, today: date) -> bool:
        """The last valid day is ``expires`` itself."""
        return self.expires < today

    def matches(self, f: Finding) -> bool:
        """Every selector given must match (a fingerprint together with selectors narrows, never widens)."""
        if self.fingerprint is not None and f.fingerprint != self.fingerprint:
            return False
        if self.versions is not None:
            wanted = pin_filter(self.versions)
            if not any(wanted(parse_key(p)) for p in f.pins):
                return False
        globs = ((self.rule, f.rule), (self.endpoint, f.endpoint), (self.location, f.location))
        return all(pattern is None or fnmatchcase(value, pattern) for pattern, value in globs)

    def record(self) -> dict[str, Any]:
        """What a matched finding carries in its ``waiver`` field."""
        return {"id": self.id, "reason": self.reason, "owner": self.owner, "expires": self.expires.isoformat()}

    def describe(self) -> dict[str, Any]:
        """The waiver as reported when expired or stale: id, owner, expiry and its selectors."""
        out = {"id": self.id, "owner": self.owner, "expires": self.expires.isoformat()}
        out.update({k: getattr(self, k) for k in _SELECTORS if getattr(self, k) is not None})
        return out


def _text(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None or isinstance(value, bool) or isinstance(value, (dict, list)):
        return None
    return str(value).strip() or None


def _problems(entry: dict[str, Any], today: date, max_days: int) -> list[str]:
    """Every reason this entry cannot be accepted, as short phrases."""
    out = [f"unknown key {k!r}" for k in sorted(set(entry) - set(_KEYS))]
    for key in ("id", "owner"):
        if not _text(entry, key):
            out.append(f"{key} is missing")
    reason = _text(entry, "reason") or ""
    if not reason:
        out.append("reason is missing")
    elif len(reason) < 10 or _PLACEHOLDER.search(reason) or reason.lower().strip(".") == "reason":
        out.append(f"reason {reason!r} is a placeholder: say why the change is acceptable")
    if not (_text(entry, "rule") or _text(entry, "fingerprint")):
        out.append("needs a rule (with optional endpoint, versions, location) or a fingerprint")
    rule = _text(entry, "rule")
    if rule and not any(fnmatchcase(r, rule) for r in RULES):
        out.append(f"rule {rule!r} matches no rule id (specgate diff --rules lists them)")
    fingerprint = _text(entry, "fingerprint")
    if fingerprint and not _FINGERPRINT.fullmatch(fingerprint):
        out.append(f"fingerprint {fingerprint!r} is not of the form sg1:<16 hex digits>")
    if _text(entry, "versions"):
        try:
            pin_filter(_text(entry, "versions"))
        except ValueError as e:
            out.append(f"versions: {e}")
    expires = _text(entry, "expires")
    try:
        day = date.fromisoformat(expires or "")
    except ValueError:
        out.append(f"expires {expires!r} is not a date (YYYY-MM-DD)" if expires else "expires is missing")
    else:
        if (day - today).days > max_days:
            out.append(f"expires {day} is more than max_waiver_days = {max_days} days after {today}")
    return out


def parse(entries: Any, *, today: date, max_days: int, where: str = "waivers") -> list[Waiver]:
    """Waivers from the already parsed ``waivers`` list; raises ``WaiverError`` naming every problem."""
    if not isinstance(entries, list):
        raise WaiverError([f"{where}: expected `waivers = [ ... ]`"])
    errors, waivers, seen = [], [], set()
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            errors.append(f"{where}: entry #{i} is not an object")
            continue
        problems = _problems(entry, today, max_days)
        ident = _text(entry, "id")
        if ident and ident in seen:
            problems.append("duplicate id")
        seen.add(ident)
        errors += [f"{where}: waiver {ident or f'#{i}'}: {p}" for p in problems]
        if not problems:
            fields = {k: _text(entry, k) for k in _KEYS if k != "expires"}
            waivers.append(Waiver(expires=date.fromisoformat(_text(entry, "expires")), **fields))
    if errors:
        raise WaiverError(errors)
    return waivers


def load(path: str | Path, *, today: date, max_days: int) -> list[Waiver]:
    """Waivers from a HOCON or JSON file holding ``waivers = [ ... ]``."""
    tree = read_hocon(path, WaiverError)
    return parse(tree.get("waivers"), today=today, max_days=max_days, where=str(path))


def apply(
    findings: Iterable[Finding], waivers: list[Waiver], today: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Mark matched findings (first matching waiver in file order); return (expired, stale) waiver reports.

    An expired waiver matches nothing; its report lists the findings it would have covered, which now
    count again. A stale waiver is one still in force that matched no finding.
    """
    findings = sorted(findings, key=Finding.sort_key)
    active = [w for w in waivers if not w.expired(today)]
    used: set[str] = set()
    for f in findings:
        w = next((w for w in active if w.matches(f)), None)
        if w is not None:
            f.waiver = w.record()
            used.add(w.id)
    expired = [
        {**w.describe(), "findings": [_brief(f) for f in findings if w.matches(f)]}
        for w in waivers
        if w.expired(today)
    ]
    stale = [w.describe() for w in active if w.id not in used]
    return expired, stale


def _brief(f: Finding) -> dict[str, Any]:
    return {"rule": f.rule, "endpoint": f.endpoint, "pins": f.pins, "fingerprint": f.fingerprint}


def stub(finding: Finding, *, today: date | None = None) -> str:
    """A ready-to-edit HOCON waiver entry for one finding; its reason and owner fail validation until filled."""
    today = today or date.today()
    fp = finding.fingerprint
    where = " ".join(x for x in (finding.level, pin_range(finding.pins), finding.location) if x)
    lines = [
        f"id = {json.dumps('W-' + fp[4:12])}",
        f"# {where}: {' '.join(finding.message.split())}",
        f"rule = {json.dumps(finding.rule)}",
        *([f"endpoint = {json.dumps(finding.endpoint)}"] if finding.endpoint else []),
        f"fingerprint = {json.dumps(fp)}",
        f"reason = {json.dumps(STUB_REASON)}",
        'owner = ""',
        f'expires = "{today + timedelta(days=STUB_DAYS)}"',
    ]
    return "{\n" + "".join(f"  {line}\n" for line in lines) + "}"


def stubs(findings: Iterable[Finding], *, today: date | None = None) -> str:
    """A complete waiver file with one stub per given finding (the CLI passes the active ones)."""
    body = "".join("  " + stub(f, today=today).replace("\n", "\n  ") + "\n" for f in findings)
    return f"waivers = [\n{body}]\n"
