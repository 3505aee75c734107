"""Renders docs/benchmarks.md from bench/results/before.json and after.json,
side by side, with the ratio after / before.

    python -m bench.report [--results bench/results] [--doc docs/benchmarks.md]

Separate from the runner so the doc can be rendered again at any time. The
hand-written part ("what the profiles showed") lives in bench/profile-notes.md
and is included as it is.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "bench" / "profile-notes.md"
LABELS = ("before", "after")
PROCESSES = ("gateway", "registration", "capacity", "notification", "postgresql", "rabbitmq",
             "client", "sink")

# Figures computed from a result rather than stored in it.
def accept_all(result: dict, name: str):
    """Accept latency over every request sent (see timing.accept_latency);
    "timed out" when the percentile falls among the unanswered. Results made
    before that figure existed get it from the status counts when that is
    exact (the percentile falls among the unanswered, or none was)."""
    stored = get(result, "stages.accept_all")
    if stored is not None:
        return stored[name] if stored[name] is not None else "timed out"
    http = result.get("http") or {}
    total, accepted = sum(http.values()), http.get("202", 0)
    if not total:
        return None
    if math.ceil({"p50": 0.5, "p99": 0.99}[name] * total) > accepted:
        return "timed out"
    return get(result, f"stages.post_to_202.{name}") if accepted == total else None


DERIVED = {
    "accept_all.p50": lambda r: accept_all(r, "p50"),
    "accept_all.p99": lambda r: accept_all(r, "p99"),
    "no_5xx": lambda r: None if "http" not in r else not any(k.startswith("5") for k in r["http"]),
    "merged": lambda r: [f"{', '.join(m['scenarios'])} ({m['started']})" for m in r.get("merged_runs", [])] or None,
    "no_error": lambda r: None if "http" not in r else set(r["http"]) <= {"202"},
}
# (row label, dotted path into a scenario's result[, "check": a False is shown in bold])
RUSH_ROWS = [
    ("finished within the time limit", "complete", "check"),
    ("HTTP answers", "http"),
    ("no 5xx answer", "no_5xx", "check"),
    ("registrations by status", "registrations"),
    ("accepted (202) per second", "rates.accepted_per_s"),
    ("s to the last answer", "seconds.all_answered"),
    ("s to the last seat", "seconds.last_seat"),
    ("s to every decision", "seconds.all_decided"),
    ("s to every email", "seconds.all_emailed"),
    ("**seats confirmed and emailed per second**", "rates.confirmed_and_emailed_per_s"),
    ("decisions per second", "rates.decided_per_s"),
    ("decision emails per second", "rates.emailed_per_s"),
    ("if cut off: s more until the backlog was done (checks after it)", "settled_after_cut_off_s"),
    ("recipients exactly right", "checks.exact", "check"),
    ("missing / twice / wrong kind / strangers",
     "checks.missing,checks.more_than_once,checks.wrong_kind,checks.strangers"),
    ("'received' notices (decision slower than 20 s)", "checks.received_notices"),
    ("no seat sold beyond capacity", "!checks.oversold", "check"),
    ("CPU s of the whole machine / of other work on it", "machine.busy_cpu_s,machine.other_work_cpu_s"),
]
WAITLIST_ROWS = [
    ("seats full (polled, 1 s resolution)", "observed.seats_full"),
    ("nothing pending (polled)", "observed.none_pending"),
    ("waiting-list positions on the list are 1..N", "positions.list_positions_are_1_to_n", "check"),
    ("waitlisted told their own position", "positions.told_correctly"),
    ("positions told are exactly 1..N", "positions.told_set_is_1_to_n", "check"),
]
OPEN_ROWS = [
    ("finished within the time limit", "complete", "check"),
    ("requests sent", "attempts"),
    ("HTTP answers", "http"),
    ("every request answered 202 (no timeout, no 5xx)", "no_error", "check"),
    ("accept latency p50 / p99, every request (ms)", "accept_all.p50,accept_all.p99"),
    ("accept latency p50 / p99, accepted requests only (ms)", "stages.post_to_202.p50,stages.post_to_202.p99"),
    ("registrations the server took", "decided"),
    ("POST to decision p50 / p99 (ms)", "stages.post_to_decision.p50,stages.post_to_decision.p99"),
    ("POST to email p50 / p99 (ms)", "stages.post_to_email.p50,stages.post_to_email.p99"),
    ("accepted (202) per second", "rates.accepted_per_s"),
    ("s to every decision", "seconds.all_decided"),
    ("s to every email", "seconds.all_emailed"),
    ("if cut off: s more until the backlog was done (checks after it)", "settled_after_cut_off_s"),
    ("recipients exactly right", "checks.exact", "check"),
    ("CPU s of the whole machine / of other work on it", "machine.busy_cpu_s,machine.other_work_cpu_s"),
]
REMINDER_ROWS = [
    ("finished within the time limit", "complete", "check"),
    ("attendees (seven languages)", "attendees"),
    ("setup: s to register, decide and confirm them all", "setup_s"),
    ("reminders pending before the UPDATE", "reminders_pending"),
    ("reminders made due by the UPDATE", "made_due"),
    ("reminders received", "reminders_received"),
    ("s to the first reminder", "seconds.first_reminder"),
    ("s to the last reminder", "seconds.all_reminders"),
    ("**reminders per second**", "rates.reminders_per_s"),
    ("one reminder each, none missing", "checks.exact", "check"),
    ("languages / distinct subjects", "checks.languages,checks.distinct_subjects"),
    ("CPU s of the whole machine / of other work on it", "machine.busy_cpu_s,machine.other_work_cpu_s"),
]
ORGANISER_ROWS = [
    ("finished within the time limit", "complete", "check"),
    ("registrations with answers / seats", "registrations,seats"),
    ("JSON list, pages of 1,000: pages / rows / s", "pages.pages,pages.rows,pages.seconds"),
    ("CSV export: rows / MB", "export.rows,export.mb"),
    ("CSV export: first byte (ms) / whole (s)", "export.first_byte_ms,export.seconds"),
    ("XLSX export: MB / s", "xlsx.mb,xlsx.seconds"),
    ("event read, median ms: public / with the organisation's key",
     "read_ms.public,read_ms.organisation_key"),
    ("stats, median ms: installation key / organisation's key",
     "stats_ms.installation_key,stats_ms.organisation_key"),
    ("console, median ms: name searched / filtered page of 50 / queue / door's search",
     "console_ms.search,console_ms.filtered,console_ms.queue,console_ms.door_search"),
    ("erasures by 8 clients: answered (s) / **per second**", "erasure.answered_s,erasure.per_s"),
    ("s to every erasure done in notification / seats passed down the line",
     "erasure.erased_everywhere_s,erasure.line_moved_s"),
    ("every row exported and listed, the erased blank, their seats re-filled",
     "checks.exact", "check"),
]

SESSION_ROWS = [
    ("finished within the time limit", "complete", "check"),
    ("followers (confirmed, registered without sessions)", "followers"),
    ("setup: s to register, decide and confirm them all", "setup_s"),
    ("PATCH answered (s)", "seconds.patch_answered"),
    ("followers holding the new session / told of it", "enrolled,told"),
    ("s to every follower enrolled (server updated_at)", "seconds.all_enrolled"),
    ("s to every follower enrolled (polled list, ~1 s resolution)", "seconds.all_enrolled_observed"),
    ("s to the first / last \"Your seat in\" email", "seconds.first_told,seconds.all_told"),
    ("**followers enrolled per second**", "rates.enrolled_per_s"),
    ("**followers told per second**", "rates.told_per_s"),
    ("the same PATCH again: HTTP status / ms", "repeat_patch.status,repeat_patch.ms"),
    ("one \"Your seat in\" email each, nobody else mailed, after both PATCHes", "checks.exact", "check"),
    ("missing / twice / other mail", "checks.missing,checks.more_than_once,checks.other_mail"),
    ("CPU s of the whole machine / of other work on it", "machine.busy_cpu_s,machine.other_work_cpu_s"),
]
STAGES = [("POST → 202", "post_to_202"), ("202 → decision (server updated_at)", "202_to_decision"),
          ("decision → email at the sink", "decision_to_email"), ("POST → email", "post_to_email")]


# -- values ---------------------------------------------------------------------------------
def get(result: dict | None, path: str):
    if result is None:
        return None
    if "," in path:
        return [get(result, part) for part in path.split(",")]
    if path in DERIVED:
        return DERIVED[path](result)
    if path.startswith("!"):
        value = get(result, path[1:])
        return None if value is None else not value
    value = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {show(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return " / ".join(show(v) for v in value) if value else "none"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(before, after) -> str:
    numbers = (int, float)
    if isinstance(before, bool) or isinstance(after, bool):
        return ""
    if isinstance(before, numbers) and isinstance(after, numbers) and before:
        return f"{after / before:.2f}×"
    return ""


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def compare(rows: list[tuple], before: dict | None, after: dict | None) -> str:
    """Rows of (label, path[, "check"]): a failed check is shown in bold."""
    body = []
    for label, path, *kind in rows:
        b, a = get(before, path), get(after, path)
        cells = [f"**{show(v)}**" if kind and v is False else show(v) for v in (b, a)]
        body.append([label, *cells, ratio(b, a)])
    return table(["", "before", "after", "after ÷ before"], body)


SUMMARY = [
    ("(a) seats confirmed and emailed per second", "a", "rates.confirmed_and_emailed_per_s"),
    ("(b) s to the last seat", "b", "seconds.last_seat"),
    ("(b) s to every decision", "b", "seconds.all_decided"),
    ("(b) s to every email", "b", "seconds.all_emailed"),
    ("(c) accept latency p50 (ms)", "c", "accept_all.p50"),
    ("(c) accept latency p99 (ms)", "c", "accept_all.p99"),
    ("(c) POST to decision p50 (ms)", "c", "stages.post_to_decision.p50"),
    ("(c) POST to decision p99 (ms)", "c", "stages.post_to_decision.p99"),
    ("(d) reminders per second", "d", "rates.reminders_per_s"),
    ("(f) seats confirmed and emailed per second, SQLite", "f", "rates.confirmed_and_emailed_per_s"),
    ("(g) followers enrolled in a new session per second", "g", "rates.enrolled_per_s"),
    ("(g) followers told of their seat per second", "g", "rates.told_per_s"),
    ("(h) CSV export of 5,000 rows with answers (s)", "h", "export.seconds"),
    ("(h) erasures per second", "h", "erasure.per_s"),
]


def summary(runs: dict) -> str:
    body = []
    for label, letter, path in SUMMARY:
        b, a = (get(scenario(runs, label_, letter), path) for label_ in LABELS)
        flags = [" (cut off)" if get(scenario(runs, label_, letter), "complete") is False else "" for label_ in LABELS]
        body.append([label, show(b) + flags[0], show(a) + flags[1], ratio(b, a)])
    for letter in ("a", "b"):
        b, a = (sum((get(scenario(runs, label_, letter), "cpu_ms_per_registration") or {}).values()) or None
                for label_ in LABELS)
        body.append([f"({letter}) CPU ms per registration, all processes", show(b), show(a), ratio(b, a)])
    return table(["", "before", "after", "after ÷ before"], body)


# -- sections ----------------------------------------------------------------------------------
def conditions(runs: dict) -> str:
    rows = [
        ("date (UTC)", "started"), ("scenarios re-run later and merged in", "merged"),
        ("scale (1 = the full counts)", "scale"),
        ("time limit per scenario (s)", "time_limit_s"),
        ("cores", "conditions.machine.cores"), ("CPU", "conditions.machine.cpu_model"),
        ("memory (GB)", "conditions.machine.memory_gb"), ("kernel", "conditions.machine.kernel"),
        ("load average at start", "conditions.machine.load_average_at_start"),
        ("Python", "conditions.machine.python"), ("PostgreSQL", "conditions.postgresql.server_version"),
        ("fsync / synchronous_commit", "conditions.postgresql.fsync,conditions.postgresql.synchronous_commit"),
        ("wal_sync_method / full_page_writes",
         "conditions.postgresql.wal_sync_method,conditions.postgresql.full_page_writes"),
        ("shared_buffers", "conditions.postgresql.shared_buffers"), ("RabbitMQ", "conditions.rabbitmq"),
        ("delivery mode (2 = persistent) / publisher confirms (nameko default)",
         "conditions.publishing.nameko_delivery_mode,conditions.publishing.nameko_use_confirms"),
        ("persistent / confirmed publish sites in services+shared",
         "conditions.publishing.persistent_publish_sites,conditions.publishing.confirm_sites"),
        ("non-persistent or unconfirmed publishing in", "conditions.publishing.non_persistent_or_unconfirmed_in"),
        ("durable queues / queues", "conditions.queues.durable,conditions.queues.queues"),
        ("replicas on PostgreSQL", "conditions.replicas.postgres"),
        ("code (commit; services changed since)",
         "conditions.code.commit,conditions.code.services_changed_since_commit"),
        ("services imported from", "conditions.services_import_from"),
        ("load client", "conditions.client"), ("SMTP sink", "conditions.sink"), ("harness", "conditions.harness"),
    ]
    body = [[label] + [show(get(runs.get(label_), path)) for label_ in LABELS] for label, path in rows]
    return table(["", "before", "after"], body)


def cpu_table(letter: str, runs: dict, key: str = "cpu_ms_per_registration") -> str:
    before, after = (scenario(runs, label_, letter) for label_ in LABELS)
    body = []
    for process in PROCESSES:
        b, a = get(before, f"{key}.{process}"), get(after, f"{key}.{process}")
        body.append([process, show(b), show(a), ratio(b, a)])
    totals = [sum((get(r, key) or {}).values()) if r else None for r in (before, after)]
    body.append(["**all**", show(totals[0]), show(totals[1]), ratio(*totals)])
    unit = "reminder" if "reminder" in key else "follower" if "follower" in key else "registration"
    return table(["CPU ms per " + unit,
                  "before", "after", "after ÷ before"], body)


def memory_table(runs: dict) -> str:
    def peak(label, service):
        memory = (runs.get(label) or {}).get("memory", {})
        values = [m[service]["peak_mb"] for name, m in memory.items()
                  if name.startswith("postgres") and service in m]
        return round(max(values), 1) if values else None

    def idle(label, service):
        return get(runs.get(label), f"memory.postgres idle.{service}.rss_mb")

    body = []
    for service in PROCESSES[:4]:
        b, a = peak("before", service), peak("after", service)
        body.append([service, show(idle("before", service)), show(idle("after", service)),
                     show(b), show(a), ratio(b, a)])
    return table(["service", "idle RSS before (MB)", "idle RSS after (MB)", "peak RSS before (MB)",
                  "peak RSS after (MB)", "peak after ÷ before"], body)


def stage_table(letter: str, runs: dict) -> str:
    before, after = (scenario(runs, label_, letter) for label_ in LABELS)
    body = []
    for label, key in STAGES:
        cells = [show(get(r, f"stages.{key}.{p}")) for p in ("p50", "p99") for r in (before, after)]
        body.append([label] + cells)
    return table(["stage (ms)", "p50 before", "p50 after", "p99 before", "p99 after"], body)


def busiest(letter: str, runs: dict) -> str:
    parts = []
    for label in LABELS:
        cpu = get(scenario(runs, label, letter), "cpu_s") or {}
        total = sum(cpu.values())
        if total:
            top = sorted(cpu.items(), key=lambda item: -item[1])[:4]
            parts.append(f"{label}: " + ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in top))
    return "; ".join(parts) or "—"


def scenario(runs: dict, label: str, letter: str) -> dict | None:
    return ((runs.get(label) or {}).get("scenarios") or {}).get(letter)


# -- the document ---------------------------------------------------------------------------------
INTRO = """# Benchmarks: the registration pipeline

Rendered by `python -m bench.report` from `bench/results/before.json` and
`bench/results/after.json`; measured by `make bench` (`python -m bench`, see
`bench/README.md`). "before" is the code before the batched hot path, "after"
the code with it. The machine is shared with other work, so expect noise of
10–20 % between runs; compare ratios, not third digits.

How it is measured: the real services (`tests/harness.py` Stack, one replica
each) on PostgreSQL with fsync on, persistent messages and publisher confirms;
a load client of one asyncio process (aiohttp, kept connections); an SMTP sink
in its own process that records envelope recipients, arrival times and the
Message-ID, and stores the raw bytes that are parsed only after the timed part.
Every clock is this machine's wall clock. A scenario's times run from the
first POST. "Decision" times are the registration service's `updated_at` of
each row (read from the registrations list after the run); email times are
arrivals at the sink. A scenario still unfinished after the time limit is cut
off and shows what it had reached.
"""


# letter, heading, what the reader should know first, rows of the table
SCENARIOS = [
    ("a", "(a) 2,000 attempts from 16 clients for 1,000 seats, no waiting list",
     "Headline: seats confirmed **and** emailed per second, from the first POST to the last email.",
     RUSH_ROWS),
    ("b", "(b) 10,000 attempts from 64 clients for 5,000 seats, with a waiting list", "",
     RUSH_ROWS + WAITLIST_ROWS),
    ("c", "(c) open loop: 300 requests/s for 60 s, unlimited seats",
     "Latency counts from each request's scheduled moment (open loop: a slow answer does not "
     "delay the next request); the client gives up on a request after 60 s (\"timed out\"). "
     "POST to decision is the server's `updated_at` minus that moment, for every registration the "
     "server took, answered in time or not; it counts only those decided before the time limit.",
     OPEN_ROWS),
    ("d", "(d) 5,000 reminders in seven languages falling due at once",
     "The bench registers the attendees, waits for every confirmation email, then makes their "
     "reminders due at once directly in the notification service's database: `UPDATE "
     "scheduled_messages SET due_at = now() WHERE state = 'pending' AND kind = 'reminder' AND "
     "event_slug = …`. Times run from that UPDATE (REMINDER_POLL_SECONDS = 1).",
     REMINDER_ROWS),
    ("g", "(g) a session added to a series followed by 5,000 people",
     "The bench registers the followers (no `sessions` in the body: they follow the series), waits "
     "for every confirmation email and a quiet sink, then adds a session with `PATCH "
     "/api/v1/events/{slug}` (the old sessions and the new one). Times run from that PATCH: until "
     "every follower's registration holds the new session, and until each has one \"Your seat in "
     "…\" email. Then the same PATCH again, and after 5 s of quiet the check: exactly one such "
     "email each, nothing else to anyone of the event.",
     SESSION_ROWS),
    ("h", "(h) an organisation's list of 5,000 with answers: paged, exported, searched, erased",
     "With the organisation's own key (scopes events, registrations, announce, check-in, keys): 5,000 "
     "registrations with a 100-word answer each for 4,000 seats with a waiting list, read a page "
     "of 1,000 at a time by following the Link header, then exported as CSV (streamed: a page of "
     "500 per RPC) and as an XLSX workbook. Medians of 50 sequential reads, the organiser "
     "console's among them (a name searched in the list, a page of 50 filtered by status, "
     "language and session, the holds and waiting list, the door's name search). Then 500 attendees "
     "with seats are erased by 8 clients at once (`DELETE /api/v1/registrations/{id}` with the key); times run until "
     "notification has erased every copy and until the waiting list has taken the 500 seats.",
     ORGANISER_ROWS),
]


def section(runs: dict, letter: str, title: str, intro: str, rows) -> list[str]:
    return [f"\n## {title}\n", *([f"{intro}\n"] if intro else []),
            compare(rows, scenario(runs, "before", letter), scenario(runs, "after", letter))]


def document(runs: dict) -> str:
    parts = [INTRO, "## Summary\n", summary(runs), "\n## Conditions\n", conditions(runs)]
    for letter, title, intro, rows in SCENARIOS:
        parts += section(runs, letter, title, intro, rows)
    parts += ["\n## (e) memory and CPU per process\n",
              "Peak RSS is each service's VmHWM over the whole PostgreSQL run; idle is after start-up.\n",
              memory_table(runs),
              "\nCPU is utime + stime from /proc over each scenario's timed part, divided by the attempts. "
              "PostgreSQL counts this run's backends and the server's background processes; RabbitMQ is "
              "the whole broker (other work on the machine may add to both).\n"]
    for letter, title in (("a", "(a)"), ("b", "(b)"), ("c", "(c)"), ("f", "(f) on SQLite")):
        parts += [f"\n**{title}**\n", cpu_table(letter, runs)]
    parts += ["\n**(d)**, per reminder, from the UPDATE to the last reminder\n",
              cpu_table("d", runs, "cpu_ms_per_reminder")]
    parts += ["\n**(g)**, per follower, from the PATCH to the last email\n",
              cpu_table("g", runs, "cpu_ms_per_follower")]
    parts += ["\n## (f) the same as (a) on the SQLite default\n",
              compare(RUSH_ROWS, scenario(runs, "before", "f"), scenario(runs, "after", "f"))]
    parts += ["\n## Where the time goes\n",
              "Per registration, by stage (from the client's send time, the client's 202, the server's "
              "decision time and the sink's arrival time):\n"]
    for letter in ("a", "b", "c"):
        parts += [f"\n**({letter})**\n", stage_table(letter, runs),
                  f"\nCPU by process, share of the total: {busiest(letter, runs)}\n"]
    parts += ["\n" + (NOTES.read_text() if NOTES.exists() else "## What the profiles showed\n\n(to be written)\n")]
    return "\n".join(parts).rstrip() + "\n"


def one_line(letter: str, result: dict) -> str:
    """A short summary for the console."""
    if "error" in result:
        return f"failed: {result['error']}"
    figures = result.get("rates", {})
    done = "complete" if result.get("complete") else "CUT OFF"
    checks = result.get("checks", {})
    return (f"{done}; " + ", ".join(f"{k} {show(v)}" for k, v in figures.items())
            + f"; seconds {show(result.get('seconds'))}; recipients exact: {show(checks.get('exact'))}")


def load(results_dir: Path) -> dict:
    runs = {}
    for label in LABELS:
        path = results_dir / f"{label}.json"
        if path.exists():
            runs[label] = json.loads(path.read_text())
    return runs


def render_files(results_dir: Path, doc: Path) -> Path:
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(document(load(results_dir)))
    return doc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    print(f"wrote {render_files(args.results, args.doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
