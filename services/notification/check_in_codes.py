"""The check-in code in the message that tells an attendee their seat at a
place is confirmed: as text, for the door to type, and as a QR image in the
HTML, for the door to scan from a phone's screen.

Online events have no door, and a seat confirmed before codes existed has
none to show: those messages carry nothing of it.
"""
from __future__ import annotations

import base64
import io

import segno

from shared import check_in
from shared.contracts import RegistrationStatusChanged
from shared.schemas import EventSpec
from shared.statuses import Status

AT_A_PLACE = ("in_person", "hybrid")
# What the HTML names the image by (<img src="cid:…">); one image per message.
CONTENT_ID = "check-in-code@qr"
# Eight pixels a module, with the four-module quiet zone the QR standard asks
# for: about 230 px square, which a phone reads off another screen at once.
SCALE = 8
QUIET_ZONE = 4


def carried(event: EventSpec, change: RegistrationStatusChanged) -> dict | None:
    """What a message about this confirmed seat shows of its code (for the
    templates: ``code`` as people read it, the image's ``cid`` and ``size``
    in pixels), or None when it shows nothing."""
    code = change.attendee.check_in_code
    if event.format not in AT_A_PLACE or change.status != Status.CONFIRMED or not code:
        return None
    symbol = _symbol(code)
    return {"code": check_in.shown(code), "cid": CONTENT_ID,
            "size": symbol.symbol_size(scale=SCALE, border=QUIET_ZONE)[0]}


def image(code: str) -> dict:
    """The code as a PNG attached inline (an attachment of the delivery log:
    binary content is kept in base64, as JSON holds only text)."""
    png = io.BytesIO()
    _symbol(code).save(png, kind="png", scale=SCALE, border=QUIET_ZONE)
    return {"filename": "check-in-code.png", "mimetype": "image/png", "content_id": CONTENT_ID,
            "content": base64.b64encode(png.getvalue()).decode("ascii")}


def _symbol(code: str):
    """A full QR code (phones' cameras do not read Micro QR) of the code
    itself, which the door reads back as typed (shared.check_in.read)."""
    return segno.make_qr(code, error="m")
