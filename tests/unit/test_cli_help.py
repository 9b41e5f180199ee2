"""The command line explains itself: every command and option has help, and progress shows only on a terminal."""

from __future__ import annotations

import argparse
import io

import pytest

from specgate.cli import parser
from specgate.core.progress import Progress


def _commands(p: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield prefix + (name,), helps.get(name), sub
                yield from _commands(sub, prefix + (name,))


COMMANDS = list(_commands(parser()))


def test_every_command_is_listed_with_a_help_line() -> None:
    names = {" ".join(c) for c, _, _ in COMMANDS}
    assert {"compile", "diff", "openapi", "serve", "routes", "token", "token create", "repair-queues"} <= names
    assert all(help_text for _, help_text, _ in COMMANDS), [c for c, h, _ in COMMANDS if not h]


@pytest.mark.parametrize("command", [c for c, _, _ in COMMANDS], ids=[" ".join(c) for c, _, _ in COMMANDS])
def test_every_option_says_what_it_does(command, capsys) -> None:
    sub = next(p for c, _, p in COMMANDS if c == command)
    undocumented = [a.option_strings or a.dest for a in sub._actions if not a.help and a.dest != "help"]
    assert not undocumented
    with pytest.raises(SystemExit) as e:
        parser().parse_args([*command, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: specgate {' '.join(command)}")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal_and_is_silent_otherwise() -> None:
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress("parsing", 2, stream, every=0)
        p.step("a.conf")
        p.step("b.conf")
        p.close()
    assert "\rparsing" not in pipe.getvalue() and pipe.getvalue() == ""
    assert "parsing 1/2 a.conf" in tty.getvalue() and "parsing: 2/2 in" in tty.getvalue()
