"""Build commands behind ``specgate``: compile (and, later, diff). Exit codes: 0, 1 stale, 2 usage, 3 bad input."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .diagnostics import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, SpecError


def add_compile_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile schemas/ into specgate.lock.json and src/specgate/_generated/")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if any artefact is stale, missing or orphaned")
    p.add_argument("--root", type=Path, default=Path("."), help="project root holding the lock file and src/ (default: .)")
    p.add_argument("--schemas", type=Path, help="spec directory (default: ROOT/schemas)")
    p.set_defaults(run=run_compile)


def run_compile(args: argparse.Namespace) -> int:
    from .compiler import compile_tree
    from .write import apply, check

    root = args.root.resolve()
    started = time.perf_counter()
    try:
        api, artefacts = compile_tree(args.schemas or root / "schemas", root)
    except SpecError as e:
        print(e.diagnostics.render(), file=sys.stderr)
        return EXIT_INPUT
    except FileNotFoundError as e:
        print(f"specgate compile: {e}", file=sys.stderr)
        return EXIT_INPUT
    elapsed = time.perf_counter() - started
    endpoints = sum(len(a.versions) for _, a in api.endpoints())
    if args.check:
        problems = check(root, artefacts)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("generated artefacts are not fresh: run `make generate` and commit the result", file=sys.stderr)
            return EXIT_FINDINGS
        print(f"fresh: {len(artefacts)} artefacts, {endpoints} endpoint versions, max version {api.max_version}")
        return EXIT_OK
    touched = apply(root, artefacts)
    print(
        f"compiled {len(api.services)} services, {endpoints} endpoint versions, max version {api.max_version} "
        f"in {elapsed:.2f}s; {len(touched)} file(s) written"
    )
    return EXIT_OK
