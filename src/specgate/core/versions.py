"""API versions and the one rule that maps a client's pin to an endpoint version.

A version key is ``MAJOR.MINOR`` with numeric parts (``2.9 < 2.13``) and no leading zeros, as ClearML
writes them. A client pinned at P is served by the action's highest key <= P: the *floor rule*. The same
function picks the validator and the handler, so they can never disagree (clearml-server uses two rules).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from typing import NamedTuple, Sequence

_PATTERN = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_PIN_PATTERN = re.compile(r"(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?")

DRAFT_MAJOR = 999
"""Keys at or above this major version are drafts (ClearML writes unreleased changes as ``999.0``)."""


class Version(NamedTuple):
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def is_draft(self) -> bool:
        return self.major >= DRAFT_MAJOR


class VersionError(ValueError):
    """A version string that is not ``MAJOR.MINOR`` (or ``MAJOR`` for a client pin)."""


def parse_key(text: str) -> Version:
    """Parse a spec version key; keys must be exactly ``MAJOR.MINOR``."""
    m = _PATTERN.fullmatch(text)
    if not m:
        raise VersionError(f"version key {text!r} is not MAJOR.MINOR (e.g. \"2.13\")")
    return Version(int(m[1]), int(m[2]))


@lru_cache(maxsize=256)  # parsed on every call; clients send a handful of distinct pins
def parse_pin(text: str) -> Version:
    """Parse a client pin; like ClearML's partial versions, ``"2"`` means ``2.0``."""
    m = _PIN_PATTERN.fullmatch(text.strip())
    if not m:
        raise VersionError(f"invalid API version {text!r}: expected MAJOR.MINOR without leading zeros")
    return Version(int(m[1]), int(m[2] or 0))


def floor(keys: Sequence[Version], pin: Version) -> Version | None:
    """The highest of the ascending ``keys`` that is <= ``pin``, or None when ``pin`` is below them all."""
    i = bisect_right(keys, pin)
    return keys[i - 1] if i else None


def routable(keys: Sequence[Version], *, drafts: bool, max_version: Version) -> list[tuple[Version, Version]]:
    """The (serve-from, actual key) pairs an action answers to, ascending by serve-from.

    Released keys serve from themselves. Draft keys serve from themselves only when drafts are on. An
    action that exists only as a draft (``tasks.update_tags`` in ClearML 1.12) is served from the max
    released version when drafts are off, as the real server does, rather than disappearing.
    """
    released = [k for k in keys if not k.is_draft]
    if drafts:
        return [(k, k) for k in keys]
    if released:
        return [(k, k) for k in released]
    return [(max_version, keys[0])] if keys else []


class Routing:
    """An action's ``routable`` pairs, precomputed so the floor rule is one bisect per call."""

    __slots__ = ("serve", "actual")

    def __init__(self, pairs: Sequence[tuple[Version, Version]]):
        self.serve = [s for s, _ in pairs]
        self.actual = dict(pairs)

    def pick(self, pin: Version) -> Version | None:
        """The actual key that serves ``pin`` (the floor rule), or None below the first key."""
        found = floor(self.serve, pin)
        return None if found is None else self.actual[found]
