"""make bench: the registration pipeline under load, on the real system.

    python -m bench [--scenarios a,b,c,d,f,g,h] [--scale 1] [--label after] [--out FILE]
                    [--time-limit 600] [--profile DIR] [--no-report]
    python -m bench --report-only        # re-render docs/benchmarks.md from bench/results/

Scenarios a-d and g run on one stack on PostgreSQL, f on a fresh one on SQLite.
Results go to bench/results/<label>.json (rewritten after each scenario, so a
cut-off run keeps what it measured); then docs/benchmarks.md is rendered from
before.json and after.json (see bench/report.py).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # python bench/run.py works as well as python -m bench
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench import report, scenarios, system  # noqa: E402
from bench.client import Api  # noqa: E402
from bench.organisers import scenario_h  # noqa: E402
from bench.scenarios import Context, drain  # noqa: E402
from bench.sink import SinkProcess  # noqa: E402
from bench.watch import log_line  # noqa: E402
from tests.support import databases, paths  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# (c), the open loop, runs last on its stack: on a system slower than 300/s it
# leaves a backlog that would run into whatever came next.
ORDER = "abdghcf"
SCENARIOS = {**scenarios.SCENARIOS, "h": scenario_h}
CONNECTIONS = 512     # the client's pool; closed-loop scenarios use at most their worker count


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="a,b,c,d,f,g,h",
                        help="which of a,b,c,d,f,g (e is measured in all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every count (0.05: a smoke run)")
    parser.add_argument("--label", default="after", help="before or after: names the results file")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/<label>.json)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds before a scenario is cut off")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy flamegraphs of the services during (a)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--merge", action="store_true",
                        help="add these scenarios to the existing results file instead of starting it anew")
    parser.add_argument("--keep", action="store_true",
                        help="keep the services' logs and the raw mail (kept anyway when a scenario fails)")
    parser.add_argument("--no-report", action="store_true", help="do not render the doc afterwards")
    parser.add_argument("--report-only", action="store_true", help="only render the doc from bench/results/")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip() and s.strip() != "e"]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.scenarios.sort(key=ORDER.index)
    args.out = args.out or RESULTS / f"{args.label}.json"
    return args


# -- conditions ---------------------------------------------------------------------------
def services_root() -> str:
    """Where `python -m services.x`, started as the harness starts it, imports
    the code from (the bench measures whatever tree it runs in)."""
    out = subprocess.run([sys.executable, "-c", "import services, shared; print(services.__file__)"],
                         cwd=paths.ROOT, capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or out.stderr.strip()[-300:]


def conditions() -> dict:
    return {
        "machine": system.machine(), "code": system.code_version(), "services_import_from": services_root(),
        "postgresql": system.postgres_settings(databases.POSTGRES_ADMIN_URL),
        "rabbitmq": system.rabbitmq_version(), "publishing": system.publishing(),
        "client": f"asyncio + aiohttp {aiohttp.__version__}, one process, pool of {CONNECTIONS} connections",
        "sink": "bench/sink.py: asyncio SMTP in its own process, records envelope + Message-ID, no parsing",
        "harness": "tests/harness.py Stack; RATE_LIMIT_PER_MINUTE=0, REMINDER_POLL_SECONDS=1",
    }


def replicas(stack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for process in stack.processes:
        counts[process.name] = counts.get(process.name, 0) + 1
    return counts


# -- running -------------------------------------------------------------------------------
def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    tmp.replace(path)


def write_pids(stack, sink: SinkProcess) -> None:
    """For bench/profile.sh: which processes to attach to."""
    lines = [f"{p.name} {p.process.pid}" for p in stack.processes] + [f"sink {sink.pid}"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pids.txt").write_text("\n".join(lines) + "\n")


async def run_scenarios(stack, database: str, letters: list[str], results: dict, args) -> None:
    api = Api(stack.base_url, stack.admin_headers(), CONNECTIONS)
    probe = system.Probe(stack, stack.smtp.pid)
    ctx = Context(stack, api, stack.smtp.log(), probe, args.scale, args.time_limit,
                  args.profile if args.profile else None)
    # A merged run keeps its figures apart: the report's memory table and the
    # conditions describe the run the file was started by.
    merged = results["merged_runs"][-1] if args.merge and results.get("merged_runs") else None
    memory = results["memory"] if merged is None else merged.setdefault("memory", {})
    memory[f"{database} idle"] = probe.memory()
    try:
        for letter in letters:
            results["scenarios"][letter] = await run_one(ctx, letter, database, last=letter == letters[-1])
            memory[f"{database} after {letter}"] = probe.memory()
            save(results, args.out)
        if database == "postgres":
            (results["conditions"] if merged is None else merged)["queues"] = \
                system.queue_durability(stack.vhost.name)
    finally:
        await api.close()


async def run_one(ctx: Context, letter: str, database: str, last: bool) -> dict:
    log_line(f"== scenario ({letter}) on {database} ==")
    started = time.time()
    try:
        result = await SCENARIOS[letter](ctx)
    except Exception as exc:           # record it and go on with the other scenarios
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}", "complete": False}
    result.update(database=database, wall_s=round(time.time() - started, 1),
                  memory_mb=ctx.probe.memory())
    log_line(f"== ({letter}) {report.one_line(letter, result)}")
    if not last:                       # the next scenario starts on a quiet system
        result["drain_s"] = await drain(ctx)
    return result


def run_on_stack(database: str, letters: list[str], results: dict, args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{database}-"))
    stack = Stack(tmp, database=database)
    stack.smtp = SinkProcess(tmp / "sink")       # instead of the harness's parsing aiosmtpd
    log_line(f"starting the stack on {database} (logs in {tmp})")
    try:
        stack.start()
        write_pids(stack, stack.smtp)
        results["conditions"].setdefault("replicas", {})[database] = replicas(stack)
        asyncio.run(run_scenarios(stack, database, letters, results, args))
    finally:
        stack.stop()
        failed = any("error" in r for r in results["scenarios"].values())
        if args.keep or failed:
            log_line(f"kept the services' logs and the sink's mail in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def new_results(args) -> dict:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if args.merge and args.out.exists():
        results = json.loads(args.out.read_text())
        results.setdefault("merged_runs", []).append({"started": started, "scenarios": args.scenarios,
                                                      "code": system.code_version()})
        return results
    return {"label": args.label, "scale": args.scale, "time_limit_s": args.time_limit, "started": started,
            "conditions": conditions(), "scenarios": {}, "memory": {}}


def stop_on_sigterm() -> None:
    """A plain kill must still stop the stack (the finally blocks), or the
    services, started in sessions of their own, would be left running."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def main(argv=None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    if args.report_only:
        print(f"wrote {report.render_files(RESULTS, args.doc)}")
        return 0
    if not databases.postgres_available():
        print(f"PostgreSQL is not reachable at {databases.POSTGRES_ADMIN_URL}; `make services` starts it")
        return 1
    results = new_results(args)
    log_line(f"bench '{args.label}': scenarios {','.join(args.scenarios)}, scale {args.scale}, "
             f"services from {results['conditions']['services_import_from']}")
    on_postgres = [s for s in args.scenarios if s != "f"]
    if on_postgres:
        run_on_stack("postgres", on_postgres, results, args)
    if "f" in args.scenarios:
        run_on_stack("sqlite", ["f"], results, args)
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    save(results, args.out)
    log_line(f"results in {args.out}")
    if not args.no_report:
        log_line(f"wrote {report.render_files(RESULTS, args.doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
