"""Fuzz harness: one real server for the whole directory (uvicorn on loopback, embedded SQLite and
Valkey, responses checked against their schemas by the server itself), a logged-in client, the
hypothesis settings every fuzz test uses (reproducible: derandomized, no example database), and case
counters printed as one summary line at the end of the run."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings

from e2e.conftest import running_server

from fuzz.checks import Client, Tracker

CASES: Counter = Counter()  # cases sent, by kind; the terminal summary prints them
SCALE = float(os.environ.get("SPECGATE_FUZZ_SCALE", "1"))  # more (or fewer) examples everywhere
EXPLORE = os.environ.get("SPECGATE_FUZZ_EXPLORE") == "1"  # random examples: for hunting locally, not for CI


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max(1, round(max_examples * SCALE)),
        deadline=None,
        derandomize=not EXPLORE,
        database=None,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate),  # no shrinking: each step is an HTTP call, some of megabytes
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("fuzz")) as info:
        yield info


@pytest.fixture(scope="session")
def client(fuzz_server):
    c = Client(fuzz_server)
    yield c
    c.close()


@pytest.fixture(scope="module")
def tracker(client):
    """Fingerprints of stored data around refused calls (``checks.Tracker``)."""
    t = Tracker(client)
    yield t
    t.close()


def pytest_terminal_summary(terminalreporter) -> None:
    if CASES:
        parts = ", ".join(f"{kind} {n}" for kind, n in sorted(CASES.items()))
        terminalreporter.write_line(f"fuzz cases: {sum(CASES.values())} ({parts})")
