"""site status history

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 06:04:21.041077

Each site's activations, suspensions, reactivations and closure, with the day (at the site)
from which each holds. Existing sites get their history from what is recorded:
- the activation on `site.activated_on`, the closure on `site.closed_on` (with the site's
  status reason);
- suspensions and reactivations from the audit trail's `site.suspend` / `site.activate`
  (status suspended -> active) events, dated on the site's local day of the event (before this
  revision a suspension had no date of its own), never before the previous change and
  dropped if after the closure;
- a site whose status still disagrees (edited outside the services) gets one last change to
  its status, dated on its last update.
The rows are derived from facts already in the audit trail, so no audit events are added;
`recorded_by` names the audited actor, or this migration.
"""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

MIGRATION = "migration 0006"
STATUS = {
    "activation": "active",
    "suspension": "suspended",
    "reactivation": "active",
    "closure": "closed",
}


def upgrade():
    op.create_table('site_status_change',
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('on', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=255), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.CheckConstraint("(change = 'activation' AND status = 'active') OR (change = 'suspension' AND status = 'suspended') OR (change = 'reactivation' AND status = 'active') OR (change = 'closure' AND status = 'closed')", name=op.f('ck_site_status_change_status_follows_change')),
    sa.CheckConstraint("change IN ('activation', 'suspension', 'reactivation', 'closure')", name=op.f('ck_site_status_change_change_known')),
    sa.CheckConstraint("status IN ('active', 'suspended', 'closed')", name=op.f('ck_site_status_change_status_known')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_site_status_change_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_status_change'))
    )
    with op.batch_alter_table('site_status_change', schema=None) as batch_op:
        batch_op.create_index('ix_site_status_change_site_id_on', ['site_id', 'on'], unique=False)

    _backfill(op.get_bind())


def downgrade():
    # Site.status, activated_on and closed_on were kept in step: they stay as they are.
    with op.batch_alter_table('site_status_change', schema=None) as batch_op:
        batch_op.drop_index('ix_site_status_change_site_id_on')

    op.drop_table('site_status_change')


# --- data: the history of existing sites ----------------------------------------------

_site = sa.table(
    'site',
    sa.column('id', sa.Integer),
    sa.column('status', sa.String),
    sa.column('status_reason', sa.Text),
    sa.column('activated_on', sa.Date),
    sa.column('closed_on', sa.Date),
    sa.column('timezone', sa.String),
    sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('updated_at', sa.DateTime(timezone=True)),
)
_audit = sa.table(
    'audit_event',
    sa.column('id', sa.BigInteger),
    sa.column('at', sa.DateTime(timezone=True)),
    sa.column('actor', sa.String),
    sa.column('action', sa.String),
    sa.column('entity', sa.String),
    sa.column('entity_id', sa.String),
    sa.column('changes', sa.JSON),
    sa.column('reason', sa.Text),
)
_change = sa.table(
    'site_status_change',
    sa.column('site_id', sa.Integer),
    sa.column('change', sa.String),
    sa.column('status', sa.String),
    sa.column('on', sa.Date),
    sa.column('reason', sa.Text),
    sa.column('recorded_at', sa.DateTime(timezone=True)),
    sa.column('recorded_by', sa.String),
)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _local_day(moment: datetime, zone: str | None) -> date:
    try:
        tz = ZoneInfo(zone or "UTC")
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        tz = ZoneInfo("UTC")
    return _utc(moment).astimezone(tz).date()


def _stored(moment: datetime, conn: sa.Connection) -> datetime:
    """As the application stores instants: aware UTC; naive UTC on SQLite."""
    moment = _utc(moment)
    return moment.replace(tzinfo=None) if conn.dialect.name == "sqlite" else moment


def _old_status(event) -> str | None:
    status = (event.changes or {}).get("status")
    return status.get("old") if isinstance(status, dict) else None


def _history(site, events) -> list[dict]:
    rows: list[dict] = []

    def add(change, on, reason, at, actor):
        if rows and on < rows[-1]["on"]:
            on = rows[-1]["on"]
        rows.append(
            {"change": change, "on": on, "reason": reason, "at": at, "by": actor or MIGRATION}
        )

    def status() -> str:
        return STATUS[rows[-1]["change"]] if rows else "pending"

    activation = next(
        (e for e in events if e.action == "site.activate" and _old_status(e) == "pending"), None
    )
    if site.activated_on is not None:
        add(
            "activation",
            site.activated_on,
            None,
            activation.at if activation else site.updated_at,
            activation.actor if activation else None,
        )
    closing = next((e for e in events if e.action == "site.close"), None)
    for event in events:
        day = _local_day(event.at, site.timezone)
        reactivated = event.action == "site.reactivate" or (
            event.action == "site.activate" and _old_status(event) == "suspended"
        )
        if event.action == "site.suspend" and status() == "active":
            add("suspension", day, event.reason, event.at, event.actor)
        elif reactivated and status() == "suspended":
            add("reactivation", day, event.reason, event.at, event.actor)
    if site.status == "closed":
        closed_on = site.closed_on or _local_day(site.updated_at, site.timezone)
        rows = [r for r in rows if r["change"] == "activation" or r["on"] <= closed_on]
        add(
            "closure",
            closed_on,
            site.status_reason,
            closing.at if closing else site.updated_at,
            closing.actor if closing else None,
        )
    elif site.status != status() and site.status in ("active", "suspended") and rows:
        change = "suspension" if site.status == "suspended" else "reactivation"
        day = _local_day(site.updated_at, site.timezone)
        add(change, day, site.status_reason, site.updated_at, None)
    return rows


def _backfill(conn: sa.Connection) -> None:
    sites = conn.execute(sa.select(_site).order_by(_site.c.id)).all()
    for site in sites:
        events = conn.execute(
            sa.select(_audit)
            .where(
                _audit.c.entity == "site",
                _audit.c.entity_id == str(site.id),
                _audit.c.action.in_(
                    ("site.activate", "site.reactivate", "site.suspend", "site.close")
                ),
            )
            .order_by(_audit.c.id)
        ).all()
        for row in _history(site, events):
            conn.execute(
                sa.insert(_change).values(
                    site_id=site.id,
                    change=row["change"],
                    status=STATUS[row["change"]],
                    on=row["on"],
                    reason=row["reason"],
                    recorded_at=_stored(row["at"], conn),
                    recorded_by=row["by"],
                )
            )
