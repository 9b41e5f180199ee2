"""The ``specgate`` command. Build commands live in specgate_codegen and are imported only when used."""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="specgate", description="Schema-driven API gateway compiled from HOCON specs.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from specgate_codegen.cli import add_compile_parser

    add_compile_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
