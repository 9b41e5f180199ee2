"""IR → specgate.lock.json (the encoding lives in specgate.core.lockfile, shared with its reader)."""

from specgate.core import lockfile
from specgate.core.ir import Api

from . import LOCK_FILE


def emit(api: Api) -> list[tuple[str, bytes]]:
    return [(LOCK_FILE, lockfile.encode(api))]
