"""Compile-time problems, collected across the whole run so one pass reports them all."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    code: str
    message: str
    endpoint: str = ""
    version: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        at = f" [{self.endpoint}{' ' + self.version if self.version else ''}]" if self.endpoint else ""
        return f"{where}: error {self.code}:{at} {self.message}"


@dataclass
class Diagnostics:
    items: list[Diagnostic] = field(default_factory=list)

    def add(self, file: str, line: int, code: str, message: str, endpoint: str = "", version: str = "") -> None:
        d = Diagnostic(file, line, code, message, endpoint, version)
        if d not in self.items:
            self.items.append(d)

    def __bool__(self) -> bool:
        return bool(self.items)

    def render(self) -> str:
        lines = [d.render() for d in sorted(self.items)]
        lines.append(f"{len(self.items)} problem{'s' if len(self.items) != 1 else ''} in the specs")
        return "\n".join(lines)


class SpecError(Exception):
    """Raised with every diagnostic of a failed compile; the CLI prints them and exits 3."""

    def __init__(self, diagnostics: Diagnostics):
        super().__init__(diagnostics.render())
        self.diagnostics = diagnostics
