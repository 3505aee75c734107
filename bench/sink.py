"""An SMTP sink that costs as little CPU as possible, in a process of its own.

    python -m bench.sink --port 2525 --dir /tmp/sink

It speaks just enough SMTP for smtplib (EHLO/HELO, MAIL, RCPT, DATA, RSET,
NOOP, QUIT) and parses nothing of a message but its envelope and the
Message-ID header. Each message is appended raw to ``raw.bin`` and indexed
by one line in ``index.tsv``:

    arrival time (time.time()) TAB offset TAB length TAB message-id key TAB recipients

The load client tails the index while the bench runs (``SinkLog``); the raw
bytes are parsed only afterwards, outside the timed part (``bench.mailcheck``).
"""
from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The notification service sets Message-ID to <cause-with-dots@domain>; the
# cause's first word (reminder, received, status...) tells kinds apart cheaply.
MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*<([^>@\s]*)")
END_OF_DATA = b"\r\n.\r\n"


class Recorder:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.raw = open(directory / "raw.bin", "ab")
        self.index = open(directory / "index.tsv", "a", encoding="utf-8")
        self.offset = self.raw.tell()

    def record(self, recipients: list[str], data: bytes) -> None:
        arrived = time.time()
        headers = data[:data.find(b"\r\n\r\n") + 2]
        match = MESSAGE_ID.search(headers)
        key = match.group(1).decode("ascii", "replace") if match else ""
        self.raw.write(data)
        self.raw.flush()       # the index line must never point past the raw bytes
        self.index.write(f"{arrived:.6f}\t{self.offset}\t{len(data)}\t{key}\t{','.join(recipients)}\n")
        self.index.flush()     # the client tails this file for progress
        self.offset += len(data)


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recorder: Recorder):
    writer.write(b"220 bench-sink ESMTP\r\n")
    recipients: list[str] = []
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-bench-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 104857600\r\n")
            elif verb in (b"HELO", b"NOOP"):
                writer.write(b"250 OK\r\n")
            elif verb in (b"MAIL", b"RSET"):
                recipients = []
                writer.write(b"250 OK\r\n")
            elif verb == b"RCPT":
                recipients.append(_address(line))
                writer.write(b"250 OK\r\n")
            elif verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await writer.drain()
                recorder.record(recipients, await _read_data(reader))
                recipients = []
                writer.write(b"250 OK queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 Bye\r\n")
                break
            else:
                writer.write(b"502 Not implemented\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _address(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    start, end = text.find("<"), text.find(">")
    return text[start + 1:end].strip().lower() if start >= 0 < end else text[8:].strip().lower()


async def _read_data(reader: asyncio.StreamReader) -> bytes:
    # smtplib always ends the data with CRLF "." CRLF, even for an empty message.
    data = await reader.readuntil(END_OF_DATA)
    return data[:-3]    # keep the final CRLF, drop ".CRLF"; still dot-stuffed


async def serve(port: int, directory: Path) -> None:
    recorder = Recorder(directory)
    server = await asyncio.start_server(lambda r, w: session(r, w, recorder), "127.0.0.1", port,
                                        limit=64 * 1024 * 1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


# -- the side the bench uses ---------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SinkProcess:
    """Stands in for the harness's SmtpServer (.port, .start(), .stop())."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self):
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.sink", "--port", str(self.port), "--dir", str(self.directory)],
                cwd=ROOT)
            self._wait_listening()
        return self

    def _wait_listening(self, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the SMTP sink did not listen on port {self.port}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def log(self) -> SinkLog:
        return SinkLog(self.directory)


class SinkLog:
    """Tails the sink's index: who got mail, when, and of what kind."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.records: list[tuple[float, int, int, str, tuple[str, ...]]] = []
        self.by_address: dict[str, list[int]] = {}
        self._file = None
        self._partial = ""

    def poll(self) -> int:
        """Reads what arrived since the last call; returns how many messages."""
        if self._file is None:
            path = self.directory / "index.tsv"
            if not path.exists():
                return 0
            self._file = open(path, encoding="utf-8")
        chunk = self._partial + self._file.read()
        lines = chunk.split("\n")
        self._partial = lines.pop()          # an unfinished line waits for the next poll
        for line in lines:
            arrived, offset, length, key, recipients = line.split("\t")
            index = len(self.records)
            addresses = tuple(recipients.split(",")) if recipients else ()
            self.records.append((float(arrived), int(offset), int(length), key, addresses))
            for address in addresses:
                self.by_address.setdefault(address, []).append(index)
        return len(lines)

    def raw(self, index: int) -> bytes:
        _, offset, length, _, _ = self.records[index]
        with open(self.directory / "raw.bin", "rb") as raw:
            raw.seek(offset)
            return raw.read(length)

    def last_arrival(self) -> float:
        return self.records[-1][0] if self.records else 0.0


def kind_of(key: str) -> str:
    """'reminder', 'received', or another word for a status message; '' if unknown."""
    return key.split(".", 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
