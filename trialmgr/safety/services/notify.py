"""Notices to people: an in-app notification for each recipient and, when mail is
configured (MAIL_SERVER), an e-mail sent once the transaction commits (never for a write
that rolled back)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.auth.mail import queue_message
from trialmgr.auth.models import CONSORTIUM_LEAD, SAFETY_MONITOR, User
from trialmgr.errors import NotFound
from trialmgr.extensions import db
from trialmgr.safety.models import Notification

SAFETY_AUDIENCE = (SAFETY_MONITOR, CONSORTIUM_LEAD)


def recipients(roles: tuple[str, ...]) -> list[User]:
    return list(
        db.session.execute(
            sa.select(User).where(User.role.in_(roles), User.active.is_(True)).order_by(User.id)
        ).scalars()
    )


def notify(
    roles: tuple[str, ...], kind: str, title: str, body: str, link: str | None, now: datetime
) -> int:
    """Notify every active user of these roles; returns how many."""
    return notify_users(recipients(roles), kind, title, body, link, now)


def notify_users(
    people: list[User],
    kind: str,
    title: str,
    body: str,
    link: str | None,
    now: datetime,
    mail_link: str | None = None,
) -> int:
    """Notify these users (a report's subscribers); the e-mail carries `mail_link` (a full
    URL) where one is given, else the in-app link. Returns how many."""
    for user in people:
        db.session.add(
            Notification(
                user_id=user.id, kind=kind, title=title, body=body, link=link, created_at=now
            )
        )
        target = mail_link or link
        text = f"{body}\n\n{target}\n" if target else f"{body}\n"
        queue_message(user.email, f"[trialmgr] {title}", text)
    return len(people)


def inbox(user: Any, unread_only: bool = False) -> sa.Select[tuple[Notification]]:
    q = sa.select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return q.order_by(Notification.created_at.desc(), Notification.id.desc())


def unread_count(user: Any) -> int:
    return int(
        db.session.execute(
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        ).scalar_one()
    )


def mark_read(user: Any, notification_id: int, now: datetime) -> Notification:
    item = db.session.get(Notification, notification_id)
    if item is None or item.user_id != user.id:
        raise NotFound(f"No notification {notification_id}.")
    if item.read_at is None:
        item.read_at = now
    return item
