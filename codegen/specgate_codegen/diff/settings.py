"""What a diff run is told: the CLI flags and the ``diff {}`` section of ``specgate.conf`` in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from specgate.core.versions import Version


@dataclass
class DiffSettings:
    fail_on: str = "breaking"  # info | safe | dangerous | breaking | none
    released_max: Version | None = None  # default: the base side's highest released key
    release_lock: str | None = None  # a lock of what has shipped: pins it lacks are unreleased
    draft_versions: tuple[str, ...] = ("999.0",)  # keys always treated as unreleased
    unknown_request_fields: str = "ignore"  # ignore | reject: request objects open or closed by default
    apply_request_defaults: bool = True  # the gateway fills request defaults before validating
    formats_enforced: bool = False  # the gateway validates ``format`` (it does not)
    lenient_request_root: bool = True  # unknown top-level request keys are accepted (as ClearML's server does)
    internal_cap: str = "dangerous"  # dangerous | info | none
    strict_versions: bool = False
    deprecation_min_days: int = 0
    waivers: str | None = None
    max_waiver_days: int = 180
    levels: dict[str, str] = field(default_factory=dict)  # per-rule overrides; "off" disables a rule
    only: tuple[str, ...] = ()  # service.action globs
    exclude: tuple[str, ...] = ()
    allow_breaking: bool = False
    today: str | None = None  # ISO date; default: the real date (tests pin it)
