"""What the machine spent: CPU seconds and peak memory per process, read from
/proc, and the conditions a result was measured under.

CPU is utime + stime from /proc/<pid>/stat, taken before and after a
scenario; the difference is what that process spent on it. PostgreSQL counts
the backends connected to this run's databases plus the server's shared
background processes (WAL writer, checkpointer...), which also serve anyone
else using the server at the time. RabbitMQ is the whole beam.smp process,
shared with any other vhost's traffic.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
BACKEND = re.compile(r"\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]")   # a client connection's ps title


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0                  # it exited
    return (int(fields[11]) + int(fields[12])) / TICKS    # utime, stime


def status_kb(pid: int, field: str) -> int:
    """A 'VmHWM' (peak RSS) or 'VmRSS' line of /proc/<pid>/status, in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _processes():
    """(pid, command name, command line) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(entry.name), comm, cmdline


def postgres_pids(databases: list[str]) -> list[int]:
    """This run's backends and the server's own processes (not other clients' backends)."""
    pids = []
    for pid, comm, cmdline in _processes():
        if comm != "postgres" and not cmdline.startswith("postgres:"):
            continue
        if BACKEND.search(cmdline) and not any(name in cmdline for name in databases):
            continue           # someone else's connection
        pids.append(pid)
    return pids


def rabbitmq_pids() -> list[int]:
    return [pid for pid, comm, _ in _processes() if comm.startswith("beam")]


class Probe:
    """Which processes make up the system under test, grouped by role."""

    def __init__(self, stack, sink_pid: int):
        self.stack, self.sink_pid = stack, sink_pid
        self.databases = list(stack.postgres.names.values()) if stack.postgres else []

    def groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for process in self.stack.processes:
            groups.setdefault(process.name, []).append(process.process.pid)
        groups["postgresql"] = postgres_pids(self.databases) if self.databases else []
        groups["rabbitmq"] = rabbitmq_pids()
        groups["client"] = [os.getpid()]
        groups["sink"] = [self.sink_pid]
        return groups

    def cpu(self) -> dict[str, dict[int, float]]:
        """Per group, CPU seconds per pid (kept per pid so a backend that
        appears mid-scenario counts from zero, not from its whole life)."""
        return {group: {pid: cpu_seconds(pid) for pid in pids} for group, pids in self.groups().items()}

    def memory(self) -> dict[str, dict[str, float]]:
        """Peak and current RSS of each service, in MB (replicas: the largest)."""
        memory = {}
        for process in self.stack.processes:
            pid = process.process.pid
            entry = memory.setdefault(process.name, {"peak_mb": 0.0, "rss_mb": 0.0})
            entry["peak_mb"] = max(entry["peak_mb"], status_kb(pid, "VmHWM") / 1024)
            entry["rss_mb"] = max(entry["rss_mb"], status_kb(pid, "VmRSS") / 1024)
        return memory


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds spent per group between two ``Probe.cpu()`` readings."""
    spent = {}
    for group, pids in after.items():
        old = before.get(group, {})
        spent[group] = sum(max(0.0, seconds - old.get(pid, 0.0)) for pid, seconds in pids.items())
    return spent


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]                     # idle + iowait
    return (sum(fields) - idle) / TICKS


class Window:
    """CPU spent by each group, and by everything else on the machine (other
    work: the numbers are only as quiet as the machine was), over a stretch."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.cpu, self.busy, self.started = probe.cpu(), machine_busy_seconds(), time.time()

    def close(self) -> tuple[dict[str, float], dict]:
        spent = cpu_delta(self.cpu, self.probe.cpu())
        busy = machine_busy_seconds() - self.busy
        seconds = time.time() - self.started
        machine = {"seconds": round(seconds, 1), "busy_cpu_s": round(busy, 1),
                   "other_work_cpu_s": round(max(0.0, busy - sum(spent.values())), 1),
                   "utilisation": round(busy / (seconds * (os.cpu_count() or 1)), 2) if seconds else None,
                   "load_average_end": [round(v, 2) for v in os.getloadavg()]}
        return spent, machine


# -- conditions ---------------------------------------------------------------------
def _run(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cores": os.cpu_count(), "cpu_model": cpu_model, "memory_gb": round(memory_kb / 2**20, 1),
            "kernel": platform.release(), "python": sys.version.split()[0],
            "load_average_at_start": os.getloadavg()}


def postgres_settings(admin_url: str) -> dict:
    import psycopg2
    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes",
             "shared_buffers", "max_connections")
    connection = psycopg2.connect(admin_url)
    try:
        with connection.cursor() as cursor:
            settings = {}
            for name in names:
                cursor.execute(f"SHOW {name}")
                settings[name] = cursor.fetchone()[0]
            return settings
    finally:
        connection.close()


def rabbitmq_version() -> str:
    return _run("rabbitmqctl", "-q", "version")


def queue_durability(vhost: str) -> dict:
    """How many of the run's queues are durable (persistent messages survive a
    broker restart only in durable queues)."""
    out = _run("rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "durable", "--no-table-headers")
    durable = [line.split()[-1] == "true" for line in out.splitlines() if line.strip()]
    return {"queues": len(durable), "durable": sum(durable)}


def publishing() -> dict:
    """nameko's publisher defaults (persistent delivery, publisher confirms),
    how often the project's own publishers ask for them, and any place that
    turns them off."""
    from nameko.amqp.publish import Publisher
    root = Path(__file__).resolve().parents[1]
    persistent, confirms, overrides = 0, 0, []
    for folder in ("services", "shared"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(errors="replace")
            persistent += len(re.findall(r"delivery_mode\s*=\s*(?:2|PERSISTENT)", text))
            confirms += len(re.findall(r"use_confirms\s*=\s*True|confirm_select|confirm_publish", text))
            if re.search(r"use_confirms\s*=\s*False|delivery_mode\s*=\s*(?:1|NON_PERSISTENT|TRANSIENT)", text):
                overrides.append(str(path.relative_to(root)))
    return {"nameko_delivery_mode": Publisher.delivery_mode, "nameko_use_confirms": Publisher.use_confirms,
            "persistent_publish_sites": persistent, "confirm_sites": confirms,
            "non_persistent_or_unconfirmed_in": overrides}


def code_version() -> dict:
    root = Path(__file__).resolve().parents[1]
    head = _run("git", "-C", str(root), "rev-parse", "--short", "HEAD")
    dirty = _run("git", "-C", str(root), "status", "--porcelain", "--", "services", "shared")
    return {"root": str(root), "commit": head, "services_changed_since_commit": bool(dirty)}
