"""``specgate openapi``: write the OpenAPI 3.1 document of one pin (RPC) or of one REST dialect.

The IR comes from compiling ``schemas/`` (descriptions included) or, with ``--lock``, from a lock file
(a release's contract; locks carry no descriptions). Exit codes: 0, 2 usage, 3 unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .diagnostics import EXIT_INPUT, EXIT_OK, EXIT_USAGE, SpecError


def add_openapi_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "openapi",
        help="write the OpenAPI 3.1 document of an API version or of a REST dialect",
        description="Write OpenAPI 3.1: every action at one pin in its RPC form (POST /vX.Y/service.action, the "
        "{meta, data} envelope), or one REST dialect's bindings. Sorted keys: the output is reproducible.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", metavar="X.Y", help="the pin to document (default: the max version)")
    which.add_argument("--dialect", metavar="NAME", help="document a REST dialect (cvat, qarnot, ...) instead of RPC")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of standard output")
    p.add_argument("--drafts", action="store_true", help="document draft keys as a server with drafts enabled serves them")
    p.add_argument("--root", type=Path, default=Path("."), metavar="DIR", help="project root (default: .)")
    p.add_argument("--schemas", type=Path, metavar="DIR", help="spec directory (default: ROOT/schemas)")
    p.add_argument("--lock", type=Path, metavar="FILE", help="read the IR from this lock file instead of compiling")
    p.set_defaults(run=run_openapi)


def run_openapi(args: argparse.Namespace) -> int:
    from specgate.core.versions import VersionError, parse_pin

    from . import openapi, openapi_rest

    started = time.perf_counter()
    try:
        api = _load(args)
    except (SpecError, OSError, ValueError, KeyError) as e:
        text = e.diagnostics.render() if isinstance(e, SpecError) else f"specgate openapi: cannot read the IR: {e}"
        print(text, file=sys.stderr)
        return EXIT_INPUT
    if args.dialect:
        if args.dialect not in api.dialects:
            print(f"specgate openapi: no dialect {args.dialect!r} (known: {', '.join(sorted(api.dialects)) or 'none'})", file=sys.stderr)
            return EXIT_USAGE
        document = openapi_rest.dialect(api, args.dialect)
    else:
        try:
            pin = parse_pin(args.version) if args.version else api.max_version
        except VersionError as e:
            print(f"specgate openapi: {e}", file=sys.stderr)
            return EXIT_USAGE
        if pin > api.max_version and not (args.drafts and pin.is_draft):
            print(f"specgate openapi: {pin} is above the max version {api.max_version}", file=sys.stderr)
            return EXIT_USAGE
        document = openapi.rpc(api, pin, drafts=args.drafts)
    data = openapi.dumps(document)
    if args.output:
        args.output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    operations = sum(len(item) for item in document["paths"].values())
    print(f"openapi {document['info']['title']}: {operations} operations, {len(data)} bytes "
          f"in {time.perf_counter() - started:.2f}s", file=sys.stderr)  # fmt: skip
    return EXIT_OK


def _load(args: argparse.Namespace):
    if args.lock:
        from specgate.core.lockfile import decode

        return decode(json.loads(args.lock.read_text()))
    from .compiler import compile_tree

    root = args.root.resolve()
    api, _ = compile_tree(args.schemas or root / "schemas", root)
    return api
