"""The ``diff { ... }`` section of ``specgate.conf`` → :class:`DiffSettings`.

Strict on purpose: a misspelt key or rule id would otherwise silently keep the default and let a
breaking change through, so every problem is collected and reported at once (the CLI exits 2).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from specgate.core.versions import parse_key

from .model import LEVELS
from .rules import RULES
from .settings import DiffSettings

RULES_VERSION = 1


class ConfigError(Exception):
    """An invalid configuration; ``messages`` lists every problem found."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


def read_hocon(path: str | Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """A HOCON (or JSON) file as plain dicts and lists; unreadable files raise ``error``."""
    from ..hocon import HoconError, parse_plain

    try:
        return parse_plain(Path(path))
    except HoconError as e:
        raise error([f"{path}: cannot read: {e}"]) from None


def _choice(*allowed: str):
    def check(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return v

    return check


def _typed(kind: type, what: str):
    def check(v: Any) -> Any:
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise ValueError(f"must be {what}")
        return v

    return check


def _version(v: Any):
    if not isinstance(v, str):
        raise ValueError('must be a quoted version key such as "2.31"')
    return parse_key(v)


def _versions(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ValueError('must be a list of version keys such as ["999.0"]')
    return tuple(str(_version(x)) for x in v)


def _days(v: Any) -> int:
    if _typed(int, "a whole number of days")(v) < 0:
        raise ValueError("must not be negative")
    return v


# config key → (DiffSettings field, converter); converters raise ValueError with the complaint
_FIELDS = {
    "fail_on": ("fail_on", _choice(*LEVELS, "none")),
    "released_max": ("released_max", _version),
    "release_lock": ("release_lock", _typed(str, "a path")),
    "draft_versions": ("draft_versions", _versions),
    "unknown_request_fields": ("unknown_request_fields", _choice("ignore", "reject")),
    "apply_request_defaults": ("apply_request_defaults", _typed(bool, "true or false")),
    "formats_enforced": ("formats_enforced", _typed(bool, "true or false")),
    "lenient_request_root": ("lenient_request_root", _typed(bool, "true or false")),
    "internal_cap": ("internal_cap", _choice("dangerous", "info", "none")),
    "strict_versions": ("strict_versions", _typed(bool, "true or false")),
    "deprecation.min_days": ("deprecation_min_days", _days),
    "waivers": ("waivers", _typed(str, "a path")),
    "max_waiver_days": ("max_waiver_days", _days),
}
_PATHS = ("release_lock", "waivers")  # relative to the config file, not to wherever the CLI runs


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{a {b = 1}}`` → ``{"a.b": 1}``: unquoted dotted rule ids in HOCON become nested objects."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _levels(tree: Any, errors: list[str]) -> dict[str, str]:
    if not isinstance(tree, dict):
        errors.append("diff.levels: must be an object of rule = level")
        return {}
    out = {}
    for rule, level in sorted(_flatten(tree).items()):
        if rule not in RULES:
            errors.append(f"diff.levels: unknown rule id {rule!r} (specgate diff --rules lists them)")
        elif level not in (*LEVELS, "off"):
            errors.append(f"diff.levels.{rule}: {level!r} is not one of {', '.join(LEVELS)}, off")
        else:
            out[rule] = level
    return out


def parse(section: dict[str, Any], base_dir: Path | None = None) -> DiffSettings:
    """Settings from an already parsed ``diff`` section; ``base_dir`` anchors relative paths."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    section = dict(section)
    if section.pop("rules_version", RULES_VERSION) != RULES_VERSION:
        errors.append(f"diff.rules_version: this specgate implements rules_version = {RULES_VERSION}")
    if "levels" in section:
        values["levels"] = _levels(section.pop("levels"), errors)
    for key, value in sorted(_flatten(section).items()):
        if key not in _FIELDS:
            errors.append(f"diff.{key}: unknown key")
            continue
        name, convert = _FIELDS[key]
        try:
            values[name] = convert(value)
        except ValueError as e:  # VersionError included: its message names the bad key
            errors.append(f"diff.{key}: {e}")
    if errors:
        raise ConfigError(errors)
    for name in _PATHS:
        if name in values and base_dir is not None:
            values[name] = str(base_dir / values[name])
    return replace(DiffSettings(), **values)


def load(path: str | Path) -> DiffSettings:
    """``DiffSettings`` from the ``diff`` section of a ``specgate.conf``; defaults when it has none."""
    path = Path(path)
    tree = read_hocon(path)
    section = tree.get("diff", {})
    if not isinstance(section, dict):
        raise ConfigError([f"{path}: diff must be an object"])
    try:
        return parse(section, path.parent)
    except ConfigError as e:
        raise ConfigError([f"{path}: {m}" for m in e.messages]) from None
