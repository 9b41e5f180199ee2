"""Shared test set-up: the compiler's parse cache goes to a per-session temporary folder."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("SPECGATE_CACHE_DIR", str(tmp_path_factory.mktemp("hocon-cache")))
    yield
    mp.undo()
