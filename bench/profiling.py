"""py-spy profiles of every service while a scenario runs (--profile DIR):
collapsed stacks (``<name>.txt``, which flamegraph tools and speedscope read)
and, beside each, the functions that held the CPU longest (``.top.txt``).

py-spy samples a running process from outside (ptrace), so the services run
unchanged. --nonblocking keeps it from pausing them at each sample: a little
less exact, much less in the way. Idle greenlets are left out (no --idle), so
the graphs show where CPU goes.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from .watch import log_line

ROOT = Path(__file__).resolve().parents[1]


def py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else (shutil.which("py-spy") or "py-spy")


def start(stack, directory: Path, label: str, rate: int = 50) -> list[subprocess.Popen]:
    directory.mkdir(parents=True, exist_ok=True)
    profilers = []
    for index, service in enumerate(stack.processes):
        output = directory / f"{label}-{service.name}-{index}.txt"
        profilers.append(subprocess.Popen(
            [py_spy(), "record", "--pid", str(service.process.pid), "--rate", str(rate),
             "--nonblocking", "--format", "raw", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=open(directory / f"{label}-{service.name}-{index}.log", "w")))
    log_line(f"[{label}] py-spy recording {len(profilers)} services into {directory}")
    return profilers


def stop(profilers: list[subprocess.Popen]) -> None:
    """SIGINT makes py-spy stop sampling and write its file."""
    for profiler in profilers:
        if profiler.poll() is None:
            profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()


def summarise(directory: Path, top: int = 25) -> None:
    """Beside each collapsed-stack file, the functions by share of samples:
    inclusive (the function or anything it called) and by leaf (itself)."""
    for path in sorted(directory.glob("*.txt")):
        if path.name.endswith(".top.txt"):
            continue
        inclusive, leaf, total = {}, {}, 0
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [_short(frame) for frame in stack.split(";")]
            total += int(count)
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + int(count)
            leaf[frames[-1]] = leaf.get(frames[-1], 0) + int(count)
        lines = [f"{total} samples", "", "inclusive:"]
        lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in
                  sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]]
        lines += ["", "leaf:"]
        lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in
                  sorted(leaf.items(), key=lambda kv: -kv[1])[:top]]
        path.with_suffix(".top.txt").write_text("\n".join(lines) + "\n")


def _short(frame: str) -> str:
    """``function (path/to/module.py:12)`` without the line or the prefix up
    to site-packages or the project."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({re.sub(r'^.*/lib/python3[.0-9]*/', '', where)})"
