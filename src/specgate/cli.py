"""The ``specgate`` command. Build commands live in specgate_codegen and are imported only when used."""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="specgate", description="Schema-driven API gateway compiled from HOCON specs.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="run `specgate COMMAND --help` for its options")
    from specgate_codegen.cli import add_compile_parser
    from specgate_codegen.diff.cli import add_diff_parser
    from specgate_codegen.openapi_cli import add_openapi_parser

    add_compile_parser(sub)
    add_diff_parser(sub)
    add_openapi_parser(sub)
    serve = sub.add_parser("serve", help="run the gateway (settings from SPECGATE_* variables)")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1, or SPECGATE_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8008, or SPECGATE_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=run_serve)
    routes = sub.add_parser("routes", help="list every action and version with the handler serving it")
    routes.add_argument("--missing", action="store_true", help="only the versions no handler serves")
    routes.set_defaults(run=run_routes)
    token = sub.add_parser("token", help="API tokens for the REST dialects (CVAT, Qarnot, DataRobot) and Bearer calls")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION", help="what to do with tokens")
    create = token_sub.add_parser("create", help="print a new long-lived API token")
    create.add_argument("--company", help="company id (default: the provisioned default company)")
    create.add_argument("--user", help="user id (default: the provisioned admin)")
    create.add_argument("--label", default="", help="what the token is for")
    create.set_defaults(run=run_token_create)
    repair = sub.add_parser("repair-queues", help="reconcile queue contents with task statuses (also done at start-up)")
    repair.set_defaults(run=run_repair)
    return p


def run_routes(args: argparse.Namespace) -> int:
    from specgate.runtime.registry import Handlers, routes
    from specgate.runtime.tables import load

    tables = load(drafts=True)
    rows = routes(tables, Handlers(tables))
    served = sum(1 for *_, where in rows if where)
    for name, key, draft, where in rows:
        if not (args.missing and where):
            print(f"{name:45} {key:>6}{' draft' if draft else '      '}  {where or '-- not implemented'}")
    print(f"{served} of {len(rows)} endpoint versions have a handler")
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    import asyncio

    from specgate.runtime.app import create_api_token
    from specgate.runtime.settings import Settings

    try:
        print(asyncio.run(create_api_token(Settings.from_env(), args.company, args.user, args.label)))
    except Exception as e:  # an unknown user or company: say so, not a traceback
        print(f"specgate token create: {e}", file=sys.stderr)
        return 1
    return 0


def run_repair(args: argparse.Namespace) -> int:
    import asyncio

    from specgate.runtime.app import repair
    from specgate.runtime.settings import Settings

    totals = asyncio.run(repair(Settings.from_env()))
    print(
        f"checked {totals['companies']} compan{'y' if totals['companies'] == 1 else 'ies'}: "
        f"{totals['restored']} lost entr{'y' if totals['restored'] == 1 else 'ies'} restored, "
        f"{totals['dropped']} stale entr{'y' if totals['dropped'] == 1 else 'ies'} dropped"
    )
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Start uvicorn with the app factory; flags become SPECGATE_* so every worker reads the same."""
    import os

    import uvicorn

    from specgate.runtime.settings import Settings

    if args.host:
        os.environ["SPECGATE_HOST"] = args.host
    if args.port:
        os.environ["SPECGATE_PORT"] = str(args.port)
    settings = Settings.from_env()
    embedded = None
    if args.workers > 1 and not settings.redis_url:
        # one embedded Valkey for all workers, or each would hold queues of its own
        from specgate.runtime.app import queue_url

        os.environ["SPECGATE_REDIS_URL"], embedded = queue_url(settings)
    uvicorn.run(
        "specgate.runtime.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        access_log=False,  # specgate logs each call itself, as JSON with its call id
        timeout_graceful_shutdown=settings.shutdown_timeout,
        timeout_keep_alive=settings.keep_alive,
    )
    if embedded is not None:
        embedded.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
