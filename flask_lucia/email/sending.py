"""Mail that is counted before it goes (DESIGN §13): every mail-sending flow (links and
sign-in codes) counts its mail against the address's and the client's limits in the
transaction that stores what the mail carries, and takes both back if it is not sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy.engine import Connection

from flask_lucia import messages
from flask_lucia.core.auth import Auth
from flask_lucia.core.clock import now_ms
from flask_lucia.email.store import EmailStore
from flask_lucia.email.text import duration
from flask_lucia.errors import LuciaError
from flask_lucia.mail import Mailer, MailError

_HOUR = 3_600_000


class Sender(Protocol):
    """What counted mail needs of the app's email flows (``Emails``)."""

    auth: Auth
    store: EmailStore
    mailer: Mailer


def send_counted(
    sender: Sender,
    message: EmailMessage,
    address: str,
    client_address: str | None,
    keep: Callable[[Connection, int], None],
    undo: Callable[[Connection], None],
    purpose: str,
) -> None:
    """Count the mail of flow ``purpose`` (``AUTH_TOO_MANY_ATTEMPTS`` when over a limit)
    and ``keep(conn, now)`` what it carries in one transaction, send it, and ``undo`` both
    if it could not be sent (``MailError`` is raised again)."""
    now = now_ms()
    with sender.store.write() as conn:
        counted = reserve(sender, conn, purpose, address, client_address, now)
        keep(conn, now)
    try:
        sender.mailer.send(message)
    except MailError:
        with sender.store.write() as conn:
            sender.store.give_back(conn, counted)
            undo(conn)
        raise


def reserve(
    sender: Sender,
    conn: Connection,
    purpose: str,
    address: str,
    client_address: str | None,
    now: int,
) -> list[str]:
    """Count one mail against the address's limits of its flow (``purpose``: a reset
    right after the sign-up's verification mail is not refused) and the client's limits
    over every flow; the counters. Over a limit, ``AUTH_TOO_MANY_ATTEMPTS`` in words of
    what happened (the transaction, and so every count, is rolled back). With no limit
    set the address's mails are still counted, so every answer to a request writes
    alike, known address or not."""
    counted = []
    limits: tuple[tuple[str, int | None, int], ...] = sender.auth.settings.mail_limits
    for whom, limit, window in limits or (("address", None, _HOUR),):
        subject = address if whom == "address" else client_address
        if not subject:
            continue
        flow = f"{purpose}:" if whom == "address" else ""
        key = f"mail:{flow}{whom}:{window // 1000}:{subject}"
        wait = sender.store.reserve(conn, key, limit, window, now)
        if wait:
            raise LuciaError(
                "AUTH_TOO_MANY_ATTEMPTS",
                messages.mail_wait(whom, duration(wait)),
                retry_after=math.ceil(wait / 1000),
            )
        counted.append(key)
    return counted
