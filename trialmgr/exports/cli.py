"""`flask export odm|fhir|analysis --trial CODE [--output FILE]`: an export to a file (or
standard output), audited as done by the system, committed once."""

from __future__ import annotations

import shutil
import sys

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from trialmgr.auth.models import SystemActor
from trialmgr.enrollment.models import Trial
from trialmgr.exports import download
from trialmgr.extensions import db

export_cli = AppGroup("export", help="Data out: ODM, FHIR, the de-identified analysis archive.")


def _trial(code: str) -> Trial:
    trial = db.session.execute(
        sa.select(Trial).where(Trial.code == code.upper())
    ).scalar_one_or_none()
    if trial is None:
        raise click.ClickException(f"No trial {code}.")
    return trial


def _run(kind: str, code: str, output: str | None, options: dict[str, object]) -> None:
    trial = _trial(code)
    export = download.BUILDERS[kind](SystemActor(email="system:cli"), trial, options)
    db.session.commit()  # the audit row, before the file is handed over
    with export.handle:
        if output:
            with open(output, "wb") as out:
                shutil.copyfileobj(export.handle, out)
        else:
            shutil.copyfileobj(export.handle, sys.stdout.buffer)
    click.echo(f"{export.filename}: {export.size} bytes, sha256 {export.sha256}", err=True)


@export_cli.command("odm")
@click.option("--trial", "code", required=True, help="Trial code, e.g. GT-01.")
@click.option("--audit", is_flag=True, help="Add the audit trail as AuditRecords.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File (default: stdout).")
def odm_command(code: str, audit: bool, output: str | None) -> None:
    """CDISC ODM 1.3.2 of a trial."""
    _run("odm", code, output, {"audit": audit})


@export_cli.command("fhir")
@click.option("--trial", "code", required=True, help="Trial code, e.g. GT-01.")
@click.option("--format", "fmt", type=click.Choice(["json", "ndjson"]), default="json")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File (default: stdout).")
def fhir_command(code: str, fmt: str, output: str | None) -> None:
    """HL7 FHIR R4B of a trial: a collection Bundle, or NDJSON."""
    base = current_app.config.get("PUBLIC_BASE_URL") or "urn:trialmgr"
    _run("fhir", code, output, {"format": fmt, "base": base})


@export_cli.command("analysis")
@click.option("--trial", "code", required=True, help="Trial code, e.g. GT-01.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False))
def analysis_command(code: str, output: str) -> None:
    """The de-identified analysis archive (free text left out)."""
    _run("analysis", code, output, {"include_free_text": False, "confirm": False})
