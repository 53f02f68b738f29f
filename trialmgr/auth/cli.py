"""`flask users create`."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from trialmgr.auth import services
from trialmgr.auth.models import ROLES, SystemActor
from trialmgr.errors import Problem
from trialmgr.extensions import db

users_cli = AppGroup("users", help="User accounts.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--site-id", "site_ids", multiple=True, type=int, help="Site membership (coordinators)."
)
def create_command(
    email: str, name: str, role: str, password_stdin: bool, site_ids: tuple[int, ...]
) -> None:
    """Create an account (password from a prompt, or one line of standard input)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = services.create_user(
            SystemActor(email="system:cli"),
            {
                "email": email,
                "name": name,
                "role": role,
                "password": password,
                "site_ids": list(site_ids),
            },
        )
        db.session.commit()
    except Problem as exc:
        db.session.rollback()
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.errors.items())
        raise click.ClickException(f"{exc.detail} {details}".strip()) from exc
    click.echo(f"created {user.role} {user.email} (id {user.id})")
