"""A TCP proxy between a client and a server (RabbitMQ, say) that can stop
either direction on demand, to play a broker that withholds its answers or a
network that swallows the client's frames.

A frozen direction stops reading from its sender: bytes already read wait
in the proxy, later ones wait in the kernel, and everything flows again,
in order, when the direction is thawed. ``cut()`` drops every connection.
"""
from __future__ import annotations

import socket
import threading

TO_SERVER = "to_server"      # client -> server
TO_CLIENT = "to_client"      # server -> client


class FreezableProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._flowing = {TO_SERVER: threading.Event(), TO_CLIENT: threading.Event()}
        for gate in self._flowing.values():
            gate.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        self.connections = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    # -- control -------------------------------------------------------------
    def freeze(self, *directions: str) -> None:
        for direction in directions or (TO_SERVER, TO_CLIENT):
            self._flowing[direction].clear()

    def thaw(self, *directions: str) -> None:
        for direction in directions or (TO_SERVER, TO_CLIENT):
            self._flowing[direction].set()

    def cut(self) -> None:
        """Drop every open connection (new ones are still accepted)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        self.thaw()
        _close(self._listener)
        self.cut()

    def amqp_uri(self, vhost: str, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}/{vhost}"

    # -- the pumps -------------------------------------------------------------
    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, server]
                self.connections += 1
            for source, sink, direction in ((client, server, TO_SERVER), (server, client, TO_CLIENT)):
                threading.Thread(target=self._pump, args=(source, sink, direction),
                                 name=f"proxy-{direction}", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str):
        gate = self._flowing[direction]
        try:
            while True:
                gate.wait()
                data = source.recv(65536)
                if not data:
                    break
                gate.wait()          # frozen while this chunk was on its way: hold it
                if self._closed:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
