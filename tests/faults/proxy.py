"""A TCP proxy in front of a Redis server that loses replies on demand, as a dying server or a broken
connection would after the command ran."""

from __future__ import annotations

import socket
import threading


class SwallowingProxy:
    """TCP proxy to a Redis server that can drop the reply to the next command containing a marker,
    or the next reply containing one: the command runs, then the client's connection is cut before
    it hears back."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.marker: bytes | None = None
        self.reply_marker: bytes | None = None
        self.swallowed = 0
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def swallow_next(self, marker: str) -> None:
        with self.lock:
            self.marker = marker.encode()

    def swallow_next_reply(self, marker: str) -> None:
        with self.lock:
            self.reply_marker = marker.encode()

    def close(self) -> None:
        """Redis gone: the port refuses connections and open ones are cut."""
        _shut(self.listener)  # shutdown wakes the thread blocked in accept(); close alone would not
        for s in self.sockets:
            _shut(s)
        self.sockets.clear()

    def reopen(self) -> None:
        """Redis back, on the same port."""
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            armed = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, armed), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, armed), daemon=True).start()

    def _spotted(self, which: str, data: bytes) -> bool:
        """Whether ``data`` holds the armed marker ``which`` (which is then disarmed)."""
        with self.lock:
            marker = getattr(self, which)
            if marker is None or marker not in data:
                return False
            setattr(self, which, None)
            return True

    def _up(self, client: socket.socket, upstream: socket.socket, armed: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if self._spotted("marker", data):
                    armed.set()
                upstream.sendall(data)
        except OSError:
            pass
        _shut(upstream)

    def _down(self, upstream: socket.socket, client: socket.socket, armed: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if self._spotted("reply_marker", data):
                    armed.set()
                if armed.is_set():  # the command ran; its reply goes nowhere
                    self.swallowed += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        _shut(client)
        _shut(upstream)


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
