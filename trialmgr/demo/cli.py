"""`flask demo seed`: a realistic demo consortium and trial, for trying the service."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from trialmgr.auth.models import User
from trialmgr.db import today, utcnow
from trialmgr.demo import accounts, consortium, efficacy, milestones, reports, safety, trial
from trialmgr.extensions import db

demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when accounts already exist.")
def seed_command(if_empty: bool) -> None:
    """Create demo users (one per role) and the demo consortium; print the logins."""
    if db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one():
        if if_empty:
            click.echo("demo: database already has accounts; not seeding.")
            return
        raise click.ClickException(
            "The database already has accounts; demo seed needs an empty one."
        )
    logins = accounts.seed()
    sites = consortium.seed(utcnow())
    consortium.assign_coordinator("coordinator@example.org", [sites["IT01"].id])
    consortium.assign_coordinator("coordinator.fr@example.org", [sites["FR01"].id])
    gt00 = trial.seed_earlier_pilot(sites, today())
    gt01 = trial.seed(sites, today())
    safety.seed(gt01, utcnow())
    efficacy.seed([gt01, gt00])
    milestones.seed(gt01, sites, today(), utcnow())
    reports.seed_schedules(gt01, utcnow())
    db.session.commit()
    made = reports.seed_reports(gt01, sites["IT01"], utcnow())
    click.echo(f"Demo accounts (password for all: {accounts.DEMO_PASSWORD}):")
    for email, role in logins:
        click.echo(f"  {role:<16} {email}")
    click.echo(f"Demo reports in the archive (/reports): {', '.join(f'#{n}' for n in made)}")
