"""How accounts read in the audit trail (by e-mail). Registered on import."""

from __future__ import annotations

import sqlalchemy as sa

from trialmgr.audit import readable
from trialmgr.auth.models import User
from trialmgr.extensions import db


def _accounts(ids: list[str]) -> dict[str, str]:
    query = sa.select(User.id, User.email).where(User.id.in_([int(i) for i in ids if i.isdigit()]))
    return {str(k): v for k, v in db.session.execute(query)}


readable.register(
    "user_account",
    "account",
    _accounts,
    {"must_change_password": "Must change password", "date_format": "Date format"},
)
