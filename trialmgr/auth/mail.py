"""Telling the owner of an account, by e-mail, that it was locked.

Standard library only (smtplib). Mail is off unless MAIL_SERVER is set. The message goes out
once the lock is committed, from a thread of its own, so that the answer to the attempt
that locked the account takes no longer than any other refused attempt.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from trialmgr.extensions import db

log = logging.getLogger("trialmgr.auth.mail")

SETTINGS = (
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_USE_TLS",
    "MAIL_USE_SSL",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "MAIL_DEFAULT_SENDER",
    "MAIL_TIMEOUT",
)
_PENDING = "auth_mail_pending"


def send(settings: dict[str, Any], message: EmailMessage) -> None:
    """Send one message through the configured SMTP server."""
    smtp_class = smtplib.SMTP_SSL if settings["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_class(
        settings["MAIL_SERVER"], settings["MAIL_PORT"], timeout=settings["MAIL_TIMEOUT"]
    ) as smtp:
        if settings["MAIL_USE_TLS"] and not settings["MAIL_USE_SSL"]:
            smtp.starttls()
        if settings["MAIL_USERNAME"]:
            smtp.login(settings["MAIL_USERNAME"], settings["MAIL_PASSWORD"] or "")
        smtp.send_message(message)


def lock_notice(
    settings: dict[str, Any], to: str, until: datetime, failures: int, minutes: int
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = "Your trialmgr account is locked"
    message.set_content(
        f"Your trialmgr account {to} was locked after {failures} failed attempts\n"
        "to sign in, sign a record or change the password with a wrong password.\n\n"
        f"It unlocks by itself in {minutes} minutes (at {until:%Y-%m-%d %H:%M} UTC);\n"
        "an administrator can unlock it sooner.\n\n"
        "If these attempts were not yours, someone may be guessing your password:\n"
        "tell your administrator, and change your password once you are signed in.\n"
    )
    return message


def notify_account_locked(email: str, until: datetime) -> None:
    """Queue the lock notice on this transaction: sent if it commits, dropped if not."""
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        return
    settings = {key: config.get(key) for key in SETTINGS}
    message = lock_notice(
        settings, email, until, config["LOGIN_MAX_FAILURES"], config["LOGIN_LOCKOUT_MINUTES"]
    )
    _listen()
    db.session().info.setdefault(_PENDING, []).append((settings, message))


def queue_message(to: str, subject: str, body: str) -> bool:
    """Queue a plain-text message on this transaction: sent once it commits, dropped if it
    rolls back. Returns False (and does nothing) when mail is not configured."""
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        return False
    settings = {key: config.get(key) for key in SETTINGS}
    message = EmailMessage()
    message["From"] = settings["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    _listen()
    db.session().info.setdefault(_PENDING, []).append((settings, message))
    return True


def _send_logged(settings: dict[str, Any], message: EmailMessage) -> None:
    try:
        send(settings, message)
    except (OSError, smtplib.SMTPException):
        log.warning("could not send %r to %s", message["Subject"], message["To"], exc_info=True)
    finally:
        _OUTGOING.discard(threading.current_thread())


_OUTGOING: set[threading.Thread] = set()


def _after_commit(session: Session) -> None:
    for settings, message in session.info.pop(_PENDING, []):
        thread = threading.Thread(target=_send_logged, args=(settings, message), daemon=True)
        _OUTGOING.add(thread)
        thread.start()


def flush_outgoing(timeout: float = 30) -> None:
    """Wait for messages still being sent: a command that exits right after its commit
    (a scheduler pass, `flask reports generate`) would otherwise drop them."""
    for thread in list(_OUTGOING):
        thread.join(timeout)
        _OUTGOING.discard(thread)


def _after_rollback(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)


def _listen() -> None:
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _after_rollback)
