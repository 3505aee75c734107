"""The check-in code of a seat: what the confirmation shows (as text and
as a QR image) and the door reads back, typed or scanned.

Ten characters of Crockford's base32 (50 random bits: no two seats of an
event meet by chance), shown in two groups of five. Reading forgives what
people and scanners do to it: lower case, spaces and dashes, and O, I, L
for 0, 1, 1."""
from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SHAPE = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def read(text: str) -> str | None:
    """The code ``text`` names, or None when it cannot be one."""
    code = re.sub(r"[\s-]", "", text).upper().translate(_READ_AS)
    return code if _SHAPE.fullmatch(code) else None


def shown(code: str) -> str:
    """The code as people read it: ``7K2QD-M4XPA``."""
    return f"{code[:5]}-{code[5:]}"
