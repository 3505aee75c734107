"""A throwaway certificate authority and a server certificate it signed
(for localhost and 127.0.0.1), made with the openssl command line: what a
test needs to run a real TLS server that a client verifies."""
from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Authority:
    ca_file: Path            # trust this (SSL_CERT_FILE) to trust the server
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def throwaway_authority(directory: Path, name: str = "Throwaway test CA") -> Authority:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=directory)
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
             cwd=directory)
    return Authority(directory / "ca.pem", directory / "server.pem", directory / "server.key")


def dkim_key(directory: Path) -> tuple[Path, str]:
    """An RSA key for DKIM, and the public half as its DNS TXT record reads."""
    import base64
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", "dkim.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "dkim.key", "-pubout", "-outform", "DER", "-out", "dkim.pub", cwd=directory)
    public = base64.b64encode((directory / "dkim.pub").read_bytes()).decode()
    return directory / "dkim.key", f"v=DKIM1; k=rsa; p={public}"
