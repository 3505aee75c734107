"""Checks on what the sink received, done after the timed part of a scenario.

Only here are messages parsed. Which messages count: a "decision" message is
any message whose Message-ID is not a "received" notice (sent when a decision
takes longer than RECEIVED_NOTICE_SECONDS) or a reminder; an unknown
Message-ID counts as a decision, so a change of format cannot hide mail.
"""
from __future__ import annotations

import email
import email.policy
import re

from .sink import SinkLog, kind_of

NOT_DECISIONS = ("received", "reminder")
# English subjects of the templates in services/notification/templates/.
SUBJECTS = (("is confirmed", "confirmed"), ("is now yours", "confirmed"),
            ("waiting list", "waitlisted"), ("is full", "rejected"),
            ("please confirm your seat", "held"), ("received your registration", "received"),
            ("reminder", "reminder"))
POSITION = re.compile(r"position\D{0,3}(\d[\d,.\u202f\u00a0]*)", re.IGNORECASE)


def is_decision(key: str) -> bool:
    return kind_of(key) not in NOT_DECISIONS


def parse(raw: bytes) -> email.message.EmailMessage:
    unstuffed = raw.replace(b"\r\n..", b"\r\n.")
    if unstuffed.startswith(b".."):
        unstuffed = unstuffed[1:]
    return email.message_from_bytes(unstuffed, policy=email.policy.default)


def text_of(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def subject_kind(subject: str) -> str:
    lowered = subject.lower()
    for needle, kind in SUBJECTS:
        if needle in lowered:
            return kind
    return "other"


def first_decision_mail(log: SinkLog, addresses) -> dict[str, float]:
    """address -> arrival time of its first decision message (the timed part
    uses this; it reads only the index)."""
    arrivals = {}
    for address in addresses:
        for index in log.by_address.get(address, ()):
            arrived, _, _, key, _ = log.records[index]
            if is_decision(key):
                arrivals[address] = arrived
                break
    return arrivals


def check_recipients(log: SinkLog, rows: list[dict], tag: str) -> dict:
    """Exactly one decision message to each registration of the scenario, of
    the right kind, and nothing to anyone else under the scenario's tag."""
    expected = {row["email"].lower(): row["status"] for row in rows}
    ours = [a for a in log.by_address if a.split("-", 1)[0] == tag]
    missing, twice, wrong_kind, received = [], [], [], 0
    for address, status in expected.items():
        indexes = log.by_address.get(address, [])
        decisions = [i for i in indexes if is_decision(log.records[i][3])]
        received += len(indexes) - len(decisions)
        if not decisions:
            missing.append(address)
            continue
        if len(decisions) > 1:
            twice.append(address)
        told = subject_kind(str(parse(log.raw(decisions[0]))["Subject"]))
        if told != status:
            wrong_kind.append(f"{address}: {status} but told {told}")
    strangers = sorted(set(ours) - set(expected))
    return {"expected": len(expected), "missing": len(missing), "more_than_once": len(twice),
            "wrong_kind": len(wrong_kind), "strangers": len(strangers), "received_notices": received,
            "examples": (missing[:3] + twice[:3] + wrong_kind[:3] + strangers[:3]),
            "exact": not (missing or twice or wrong_kind or strangers)}


def check_positions(log: SinkLog, rows: list[dict]) -> dict:
    """Each waitlisted person was told their own position, and the positions
    on the list are exactly 1..N."""
    waitlisted = [row for row in rows if row["status"] == "waitlisted"]
    positions = sorted(row["waitlist_position"] or 0 for row in waitlisted)
    told_right, told = 0, []
    for row in waitlisted:
        decisions = [i for i in log.by_address.get(row["email"].lower(), [])
                     if is_decision(log.records[i][3])]
        if not decisions:
            continue
        message = parse(log.raw(decisions[0]))
        number = _told_position(str(message["Subject"]) + "\n" + text_of(message))
        told.append(number)
        told_right += number == row["waitlist_position"]
    expected = list(range(1, len(waitlisted) + 1))
    return {"waitlisted": len(waitlisted), "list_positions_are_1_to_n": positions == expected,
            "told_correctly": told_right, "told_set_is_1_to_n": sorted(told) == expected}


def _told_position(text: str) -> int | None:
    match = POSITION.search(text)
    if not match:
        return None
    digits = re.sub(r"\D", "", match.group(1))
    return int(digits) if digits else None


def check_reminders(log: SinkLog, languages: dict[str, str], since: float) -> dict:
    """One reminder, after ``since``, to each address; subjects per language."""
    missing, twice, subjects = 0, 0, {}
    for address, language in languages.items():
        late = [i for i in log.by_address.get(address, [])
                if log.records[i][0] >= since and kind_of(log.records[i][3]) in ("reminder", "")]
        if not late:
            missing += 1
            continue
        twice += len(late) > 1
        subject = str(parse(log.raw(late[0]))["Subject"])
        subjects.setdefault(language, set()).add(subject)
    distinct = {subject for group in subjects.values() for subject in group}
    return {"expected": len(languages), "missing": missing, "more_than_once": twice,
            "languages": len(subjects), "distinct_subjects": len(distinct),
            "exact": missing == 0 and twice == 0}


def check_session_seats(log: SinkLog, followers, since: float, subject: str, tag: str) -> dict:
    """(g): after ``since``, exactly one message whose subject starts with
    ``subject`` to each follower ("Your seat in X – Event"), and no other
    message to anyone under the scenario's tag."""
    followers = {address.lower() for address in followers}
    missing, twice, other = [], [], []
    for address in sorted({a for a in log.by_address if a.split("-", 1)[0] == tag} | followers):
        late = [i for i in log.by_address.get(address, []) if log.records[i][0] >= since]
        subjects = [str(parse(log.raw(i))["Subject"]) for i in late]
        seats = [s for s in subjects if s.startswith(subject)]
        if address in followers and not seats:
            missing.append(address)
        if len(seats) > 1:
            twice.append(address)
        other += [f"{address}: {s}" for s in subjects if not s.startswith(subject) or address not in followers]
    return {"expected": len(followers), "missing": len(missing), "more_than_once": len(twice),
            "other_mail": len(other), "examples": missing[:3] + twice[:3] + other[:3],
            "exact": not (missing or twice or other)}
