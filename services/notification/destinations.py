"""Where a webhook may be sent: public internet addresses only, unless the
operator allows the private network (WEBHOOK_ALLOW_PRIVATE).

An organiser's URL must not become a way to reach what sits behind the
platform (the broker's management API, a cloud metadata service at
169.254.169.254, a database). The host is resolved once and the connection is
made to exactly the address that was checked, so a DNS answer that changes in
between (rebinding) cannot slip past; redirects are not followed.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class ForbiddenDestination(Exception):
    """The URL points at an address webhooks may not reach."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    path: str          # with its query
    address: str       # the checked address to connect to


def allowed(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or ip.is_global


def resolve(url: str, allow_private: bool) -> Destination:
    """The URL's destination; ForbiddenDestination if any address the host
    resolves to is not allowed; OSError if it does not resolve (yet)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenDestination("only http and https URLs with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    refused = [a for a in addresses if not allowed(a, allow_private)]
    if refused:
        raise ForbiddenDestination(
            f"{parts.hostname} resolves to {refused[0]}, which is not a public address "
            "(the operator can allow private networks with WEBHOOK_ALLOW_PRIVATE=true)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, parts.hostname, port, path, addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, destination: Destination, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = destination.address

    def _socket(self):
        return socket.create_connection((self._address, self.port), self.timeout)

    def connect(self):
        self.sock = self._socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection, http.client.HTTPSConnection):
    def connect(self):
        # The certificate is checked against the URL's host name, as usual.
        self.sock = self._context.wrap_socket(self._socket(), server_hostname=self.host)


def post(destination: Destination, body: bytes, headers: dict, timeout: float) -> int:
    """POST to the checked address; the response status (redirects are not followed)."""
    kind = _PinnedHTTPSConnection if destination.scheme == "https" else _PinnedHTTPConnection
    connection = kind(destination, timeout)
    try:
        connection.request("POST", destination.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(1024)
        return response.status
    finally:
        connection.close()
