"""`flask backup create [--to DIR]` and `flask backup restore ARCHIVE [--force]`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from trialmgr.auth.models import SystemActor
from trialmgr.backup import dumps, services
from trialmgr.clock import utcnow
from trialmgr.extensions import db

backup_cli = AppGroup("backup", help="Back up and restore the database and report files.")

OPERATOR = SystemActor(email="system:backup")


@backup_cli.command("create")
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the archive (default: instance/backups).",
)
def create_command(folder: Path | None) -> None:
    """Archive the database (a consistent copy, taken while the service runs), the report
    files and a manifest of counts, the audit head and sha256s."""
    try:
        result = services.create_backup(OPERATOR, folder or services.default_folder(), utcnow())
    except (services.BackupError, dumps.DumpError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backup written: {result.path}")
    click.echo(f"  {services.describe(result.manifest)}")


@backup_cli.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace what a non-empty database holds (stop the web and scheduler processes first).",
)
def restore_command(archive: Path, force: bool) -> None:
    """Restore an archive into a fresh database, then check it against its manifest."""
    try:
        result = services.restore_backup(OPERATOR, archive, force=force)
    except (services.BackupError, dumps.DumpError) as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()  # the command's one commit: the restore's audit event
    replaced = " (replacing the data the database held)" if result.replaced_data else ""
    click.echo(f"restored {archive.name}{replaced}: {services.describe(result.manifest)}")
    click.echo("  checked against the manifest: row counts, audit chain, report sha256s")
