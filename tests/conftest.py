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


@pytest.fixture(scope="session")
def valkey_url(tmp_path_factory: pytest.TempPathFactory):
    """A real Valkey (the embedded one specgate uses) for the whole test session."""
    from specgate.adapters.embedded import EmbeddedValkey

    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    yield server.start()
    server.stop()


@pytest.fixture
async def queue_backend(valkey_url: str):
    """A connected queue backend whose keys no other test shares (queue ids are fresh uuids)."""
    from specgate.adapters.redis_queue import RedisQueues

    backend = RedisQueues(valkey_url)
    await backend.open()
    yield backend
    await backend.close()
