"""`flask audit verify`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from trialmgr.audit import services

audit_cli = AppGroup("audit", help="Audit trail commands.")


@audit_cli.command("verify")
def verify_command() -> None:
    """Recompute the hash chain; exit 1 at the first row that does not match."""
    from trialmgr.extensions import db

    result = services.verify(full=True)
    if result.valid:
        db.session.commit()  # the command's one commit: the checkpoint moves forward
        click.echo(f"audit chain valid: {result.checked} rows, head {result.head}")
        return
    click.echo(
        f"audit chain BROKEN at row {result.first_bad_id}: {result.problem} "
        f"(checked {result.checked} rows)",
        err=True,
    )
    raise SystemExit(1)
