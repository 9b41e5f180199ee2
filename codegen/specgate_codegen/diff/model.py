"""Findings and levels: the one record every output format is rendered from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from specgate.core import canonical

LEVELS = ("info", "safe", "dangerous", "breaking")
"""Ascending severity; ``--fail-on`` also accepts ``none``."""


def rank(level: str) -> int:
    return LEVELS.index(level)


def worst(levels, default: str = "info") -> str:
    return max(levels, key=rank, default=default)


@dataclass
class Finding:
    rule: str
    level: str
    direction: str | None  # "request", "response", or None for version/attribute/lint findings
    endpoint: str  # "service.action"; "" for API-wide findings
    pins: list[str]
    location: str = ""  # JSON pointer into the effective endpoint version
    old: Any = None
    new: Any = None
    message: str = ""
    root_cause: str | None = None  # "definitions/<name>/<path>" when a shared definition changed
    tags: list[str] = field(default_factory=list)
    source: dict[str, Any] | None = None  # {"file", "line"}: head side, or base side for removals
    default_level: str = ""
    hint: str | None = None
    waiver: dict[str, Any] | None = None  # {"id", "reason", "owner", "expires"} once a waiver matched

    def __post_init__(self) -> None:
        self.default_level = self.default_level or self.level

    @property
    def fingerprint(self) -> str:
        """Stable across pins and line numbers, so a waiver keeps matching after unrelated edits."""
        body = canonical.dumps([self.rule, self.endpoint, self.direction, self.location, self.old, self.new])
        return "sg1:" + hashlib.sha256(body.encode()).hexdigest()[:16]

    @property
    def counts(self) -> bool:
        """Whether this finding can fail the run (waived or label-approved findings are reported, not counted)."""
        return self.waiver is None and "waived-by-label" not in self.tags

    def tag(self, name: str) -> None:
        if name not in self.tags:
            self.tags.append(name)
            self.tags.sort()

    def sort_key(self) -> tuple:
        pins = [tuple(int(x) for x in p.split(".")) for p in self.pins]
        return (-rank(self.level), self.endpoint, pins, self.rule, self.location, self.direction or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "level": self.level,
            "default_level": self.default_level,
            "direction": self.direction,
            "endpoint": self.endpoint,
            "pins": self.pins,
            "location": self.location,
            "old": self.old,
            "new": self.new,
            "root_cause": self.root_cause,
            "message": self.message,
            "hint": self.hint,
            "tags": self.tags,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "waiver": self.waiver,
        }


@dataclass
class Report:
    base: dict[str, Any]
    head: dict[str, Any]
    fail_on: str
    findings: list[Finding]
    expired_waivers: list[dict[str, Any]] = field(default_factory=list)
    stale_waivers: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        out = {level: 0 for level in reversed(LEVELS)}
        for f in self.findings:
            if f.counts:
                out[f.level] += 1
        out["waived"] = sum(1 for f in self.findings if not f.counts)
        return out

    def failing(self) -> list[Finding]:
        if self.fail_on == "none":
            return []
        return [f for f in self.findings if f.counts and rank(f.level) >= rank(self.fail_on)]

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "base": self.base,
            "head": self.head,
            "fail_on": self.fail_on,
            "summary": self.summary(),
            "findings": [f.to_json() for f in self.findings],
            "expired_waivers": self.expired_waivers,
            "stale_waivers": self.stale_waivers,
        }
