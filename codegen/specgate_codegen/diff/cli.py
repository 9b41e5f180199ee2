"""``specgate diff``: argument parsing and exit codes (0 clean, 1 findings, 2 usage, 3 unreadable input)."""

from __future__ import annotations

import argparse
from datetime import date
import sys
from pathlib import Path

from specgate.core.versions import VersionError, parse_key

from ..diagnostics import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, EXIT_USAGE
from .model import LEVELS

FORMATS = ("text", "json", "markdown", "github")
DEFAULT_WAIVERS = "specgate-waivers.conf"
LABEL = "api-breaking-approved"


def add_diff_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="report breaking and other changes between two spec trees, git revisions or lock files",
        description="Compare BASE with HEAD per endpoint version and pin. A side is a spec directory, "
        "git:REV[:subdir] (default subdir schemas), lock:FILE, lock:REV:FILE, or a lock .json file. "
        "Exit 0: nothing at or above --fail-on; 1: findings; 2: usage/config/waiver error; 3: unreadable input.",
    )
    p.add_argument("base", nargs="?", help="base side (default: the committed specgate.lock.json)")
    p.add_argument("head", nargs="?", help="head side (default: ROOT/schemas)")
    p.add_argument("--base", dest="base_opt", metavar="REF", help="same as the BASE argument")
    p.add_argument("--head", dest="head_opt", metavar="REF", help="same as the HEAD argument")
    p.add_argument("--root", type=Path, default=Path("."), help="project root: relative paths and git run here")
    p.add_argument("--rules", action="store_true", help="list rule ids, default levels and reasons, then exit")
    p.add_argument("--format", action="append", choices=FORMATS, help="output format (repeatable; default text)")
    for fmt in FORMATS:
        p.add_argument(f"--output-{fmt}", metavar="PATH", help=f"write the {fmt} report to PATH instead of stdout")
    p.add_argument("--fail-on", choices=(*LEVELS, "none"), help="lowest level that fails the run (default breaking)")
    p.add_argument("--config", type=Path, help="specgate.conf with a diff { } section (default ROOT/specgate.conf if present)")
    p.add_argument("--waivers", help=f"waiver file (default ROOT/{DEFAULT_WAIVERS} if present)")
    p.add_argument("--release-lock", metavar="PATH", help="lock of the last release: pins it lacks count as unreleased")
    p.add_argument("--released-max", metavar="X.Y", help="highest released API version (default: the base's max)")
    p.add_argument("--include-internal", action="store_true", help="do not cap findings on internal endpoints")
    p.add_argument("--strict-versions", action="store_true", help="any change to a released pin is breaking")
    p.add_argument("--only", action="append", default=[], metavar="GLOB", help="only these service.action globs")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip these service.action globs")
    p.add_argument("--allow-breaking", action="store_true", help=f"report breaking findings without failing (the {LABEL} label)")
    p.add_argument("--emit-waivers", action="store_true", help="print a waiver stub for every failing finding")
    p.add_argument("--fail-on-stale-waivers", action="store_true", help="exit 1 when a waiver matches nothing")
    p.add_argument("--github-include-info", action="store_true", help="--format github: annotate info findings too")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour text output")
    p.add_argument("--quiet", action="store_true", help="text output: the count line only")
    p.add_argument("--today", metavar="YYYY-MM-DD", help="the date waivers and sunsets are judged against (default: today)")
    p.set_defaults(run=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    from . import formats
    from .rules import render_table

    if args.rules:
        print(render_table(as_json="json" in (args.format or [])), end="")
        return EXIT_OK
    root = args.root.resolve()
    try:
        settings = _settings(args, root)
    except ValueError as e:
        print(f"specgate diff: {e}", file=sys.stderr)
        return EXIT_USAGE
    base = args.base_opt or args.base or "lock:specgate.lock.json"
    head = args.head_opt or args.head or "schemas"
    from .inputs import InputError
    from .run import run
    from .waivers import WaiverError

    try:
        report = run(base, head, settings, root)
    except InputError as e:
        print(f"specgate diff: {e}", file=sys.stderr)
        return EXIT_INPUT
    except WaiverError as e:
        print("specgate diff: invalid waivers:\n  " + "\n  ".join(e.messages), file=sys.stderr)
        return EXIT_USAGE
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    for fmt in args.format or ["text"]:
        kw = {"include_info": args.github_include_info} if fmt == "github" else {"color": color, "quiet": args.quiet}
        text = formats.render(report, fmt, **kw)
        target = getattr(args, f"output_{fmt}")
        if target:
            Path(target).write_text(text)
        else:
            sys.stdout.write(text)
        if fmt == "github":
            formats.github_outputs(report)
    if args.emit_waivers:
        from .waivers import stub

        for f in report.failing():
            print(stub(f, today=date.fromisoformat(settings.today) if settings.today else None), file=sys.stderr)
    for w in report.expired_waivers:
        print(f"specgate diff: waiver {w.get('id')} expired on {w.get('expires')}; its findings count again", file=sys.stderr)
    if report.failing():
        return EXIT_FINDINGS
    if args.fail_on_stale_waivers and report.stale_waivers:
        print("specgate diff: stale waivers (matching nothing): " + ", ".join(str(w.get("id")) for w in report.stale_waivers), file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_OK


def _settings(args: argparse.Namespace, root: Path):
    """Config file first, then flags on top. Raises ValueError (exit 2) for bad values."""
    from .config import ConfigError, load
    from .settings import DiffSettings

    config = args.config or (root / "specgate.conf" if (root / "specgate.conf").is_file() else None)
    try:
        settings = load(config) if config else DiffSettings()
    except ConfigError as e:
        raise ValueError("invalid config:\n  " + "\n  ".join(e.messages)) from None
    if args.fail_on:
        settings.fail_on = args.fail_on
    if args.released_max:
        try:
            settings.released_max = parse_key(args.released_max)
        except VersionError as e:
            raise ValueError(str(e)) from None
    if args.release_lock:
        settings.release_lock = args.release_lock
    if args.waivers:
        settings.waivers = args.waivers
    elif settings.waivers is None and (root / DEFAULT_WAIVERS).is_file():
        settings.waivers = DEFAULT_WAIVERS
    settings.strict_versions |= args.strict_versions
    if args.include_internal:
        settings.internal_cap = "none"
    settings.only, settings.exclude = tuple(args.only), tuple(args.exclude)
    settings.allow_breaking = args.allow_breaking
    if args.today:
        settings.today = args.today
    return settings
