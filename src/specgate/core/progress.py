"""Progress of long operations on a terminal (compile of a large tree, a diff over git history,
repair-queues): one self-rewriting line on stderr, and nothing at all when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None, every: float = 0.1):
        self.stream = stream or sys.stderr
        self.on = self.stream.isatty()
        self.label, self.total, self.done, self.every = label, total, 0, every
        self.started = self.shown = time.monotonic()

    def step(self, what: str = "", n: int = 1) -> None:
        self.done += n
        if self.on and (time.monotonic() - self.shown > self.every or self.done >= self.total):
            self.shown = time.monotonic()
            self.stream.write(f"\r\x1b[K{self.label} {self.done}/{self.total} {what}"[:200])
            self.stream.flush()

    def close(self) -> None:
        if self.on:
            self.stream.write(f"\r\x1b[K{self.label}: {self.done}/{self.total} in {time.monotonic() - self.started:.1f}s\n")
            self.stream.flush()
