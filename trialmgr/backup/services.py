"""Backing up and restoring the whole service: the database and the report files.

A backup is one tar archive, `trialmgr-backup-<UTC time>.tar`:
  manifest.json     when, by whom, which engine and migration; rows per table; the audit
                    chain's length and head; sha256 and size of the database copy and of every
                    report file
  database.sqlite   SQLite: a copy made with the online backup API
  database.pgdump   PostgreSQL: `pg_dump -Fc` on the snapshot the manifest's numbers were read in
  reports/<file>    the file of every done report in that snapshot, checked against the
                    sha256 the database holds for it

Restore goes into a fresh database (no rows but Alembic's; a non-empty one only when
forced): every file of the archive is checked against the manifest before anything is
written, the database and the report files are put in place, and the result is checked
again: rows per table, the audit chain walked in full to the manifest's head, each report
file's sha256. The restore is then appended to the audit trail, its previous hash being the
manifest's head: the chain continues across the restore. A backup writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from flask import current_app

from trialmgr.audit import services as audit
from trialmgr.audit.chain import format_at
from trialmgr.backup import dumps
from trialmgr.extensions import db
from trialmgr.reports.services.archive import file_digest, report_dir

log = logging.getLogger("trialmgr.backup")

FORMAT = 1
MANIFEST = "manifest.json"
REPORTS = "reports/"
ARCHIVE_PREFIX = "trialmgr-backup-"
# Report files are named by the archive (trialmgr/reports/services/archive.py): a plain
# name, never a path; anything else in an archive is refused.
_REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.pdf$")


class BackupError(RuntimeError):
    """The backup or restore cannot go on; nothing (more) was written."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    replaced_data: bool  # --force replaced a database that held data


def default_folder() -> Path:
    return Path(current_app.instance_path) / "backups"


def _sha256(path: Path) -> str:
    return file_digest(path)[0]


def _copy_report_files(files: dict[str, tuple[str, int]], work: Path) -> dict[str, Any]:
    """Check each done report's file against the sha256 in the database: a backup holding a
    report file that differs from its record would restore a lie."""
    out: dict[str, Any] = {}
    folder = report_dir()
    for name, (sha256, size) in sorted(files.items()):
        if not _REPORT_NAME.match(name):
            raise BackupError(f"report file name {name!r} is not a plain file name")
        source = folder / name
        if not source.is_file():
            raise BackupError(f"report file {name} is missing from {folder}")
        copy = work / name
        shutil.copyfile(source, copy)
        digest, length = file_digest(copy)
        if (digest, length) != (sha256, size):
            raise BackupError(f"report file {name} does not match the sha256 its report records")
        out[name] = {"sha256": digest, "size": length}
    return out


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def create_backup(actor: Any, folder: Path, now: datetime) -> BackupResult:
    """Write one archive of the database and the report files into `folder` (made if need
    be). The archive appears whole or not at all (written beside, fsynced, renamed)."""
    engine = db.engine
    dialect = engine.dialect.name
    folder.mkdir(parents=True, exist_ok=True)
    db.session.remove()  # no transaction of ours in the way of the copy
    with tempfile.TemporaryDirectory(dir=folder, prefix=".backup-") as tmp:
        work = Path(tmp)
        (work / "reports").mkdir()
        if dialect == "sqlite":
            member = dumps.SQLITE_MEMBER
            numbers = dumps.sqlite_dump(engine.url, work / member)
        elif dialect == "postgresql":
            member = dumps.PG_MEMBER
            numbers = dumps.pg_dump(engine, work / member)
        else:
            raise BackupError(f"no backup method for {dialect}")
        digest, size = file_digest(work / member)
        manifest = {
            "format": FORMAT,
            "created_at": format_at(now),
            "created_by": actor.email,
            "dialect": dialect,
            "revision": numbers.revision,
            "database": {"file": member, "sha256": digest, "size": size},
            "tables": numbers.tables,
            "audit": {"rows": numbers.audit_rows, "head": numbers.audit_head},
            "reports": _copy_report_files(numbers.report_files, work / "reports"),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        final = folder / f"{ARCHIVE_PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}.tar"
        partial = folder / f".{final.name}.partial"
        with tarfile.open(partial, "w") as tar:
            tar.add(work / MANIFEST, arcname=MANIFEST)
            tar.add(work / member, arcname=member)
            for name in manifest["reports"]:
                tar.add(work / "reports" / name, arcname=f"{REPORTS}{name}")
        _fsync(partial)
        os.replace(partial, final)
    log.info("backup %s: %s", final, describe(manifest))
    return BackupResult(final, manifest)


# --- restore ----------------------------------------------------------------------------


def _read_member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise BackupError(f"the archive has no {name}") from None
    handle = tar.extractfile(member) if member.isfile() else None
    if handle is None:
        raise BackupError(f"{name} in the archive is not a regular file")
    return handle


def _extract(tar: tarfile.TarFile, name: str, target: Path, expected: dict[str, Any]) -> None:
    """Copy one member out (never by its own path) and check it against the manifest."""
    with _read_member(tar, name) as source, target.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    digest, size = file_digest(target)
    if (digest, size) != (expected.get("sha256"), expected.get("size")):
        raise BackupError(f"{name} in the archive does not match its manifest entry")


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r") as tar, _read_member(tar, MANIFEST) as handle:
            manifest: dict[str, Any] = json.load(handle)
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise BackupError(f"{archive} is not a trialmgr backup: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def _unpack(archive: Path, manifest: dict[str, Any], work: Path) -> Path:
    """Every file of the archive, checked against the manifest, into `work`."""
    member = manifest["database"]["file"]
    if member not in (dumps.SQLITE_MEMBER, dumps.PG_MEMBER):
        raise BackupError(f"unexpected database file {member!r}")
    (work / "reports").mkdir()
    with tarfile.open(archive, "r") as tar:
        _extract(tar, member, work / member, manifest["database"])
        for name, expected in manifest["reports"].items():
            if not _REPORT_NAME.match(name):
                raise BackupError(f"report file name {name!r} is not a plain file name")
            _extract(tar, f"{REPORTS}{name}", work / "reports" / name, expected)
    return work / member


def _place_report_files(source: Path, names: list[str]) -> None:
    """Into the report folder, each whole or not at all (copied beside, renamed)."""
    folder = report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        partial = folder / f".restore-{name}.tmp"
        shutil.copyfile(source / name, partial)
        _fsync(partial)
        os.replace(partial, folder / name)


def _check(manifest: dict[str, Any]) -> None:
    """The restored database and report files against the manifest."""
    with db.engine.connect() as conn:
        numbers = dumps.read_numbers(conn)
    wanted: dict[str, int] = manifest["tables"]
    differ = {
        t: (n, numbers.tables.get(t)) for t, n in wanted.items() if numbers.tables.get(t) != n
    }
    if differ:
        raise BackupError(f"restored row counts differ from the manifest: {differ}")
    if numbers.audit_head != manifest["audit"]["head"]:
        raise BackupError("the restored audit head is not the manifest's")
    chain = audit.verify(full=True)
    if not chain.valid or chain.head != manifest["audit"]["head"]:
        raise BackupError(f"the restored audit chain does not verify: {chain.as_dict()}")
    if chain.checked != manifest["audit"]["rows"]:
        raise BackupError("the restored audit chain is not as long as the manifest's")
    for name, expected in manifest["reports"].items():
        if _sha256(report_dir() / name) != expected["sha256"]:
            raise BackupError(f"restored report file {name} does not match the manifest")
        if numbers.report_files.get(name, ("",))[0] != expected["sha256"]:
            raise BackupError(f"restored report {name} does not record the manifest's sha256")


def restore_backup(actor: Any, archive: Path, force: bool = False) -> RestoreResult:
    """Restore `archive` into this app's database and report folder, then check the result
    against the manifest and record the restore in the audit trail (flushed, not committed).
    Refuses a database that holds data unless `force`; refuses an archive of another engine."""
    manifest = read_manifest(archive)
    engine = db.engine
    dialect = engine.dialect.name
    if manifest["dialect"] != dialect:
        raise BackupError(f"a {manifest['dialect']} backup cannot be restored into {dialect}")
    with tempfile.TemporaryDirectory(prefix="trialmgr-restore-") as tmp:
        dump = _unpack(archive, manifest, Path(tmp))
        db.session.remove()
        with engine.connect() as conn:
            occupied = dumps.holds_data(conn)
        if occupied and not force:
            raise BackupError(
                "the database is not empty: restore into a fresh database (or give --force "
                "to replace what it holds)"
            )
        engine.dispose()  # no pooled connection may outlive the database it was opened on
        if dialect == "sqlite":
            dumps.sqlite_load(dump, engine.url)
        else:
            dumps.pg_load(dump, engine.url)
        _place_report_files(Path(tmp) / "reports", list(manifest["reports"]))
    _check(manifest)
    audit.record(
        actor,
        "backup.restore",
        "backup",
        archive.name,
        changes={
            "created_at": manifest["created_at"],
            "audit_head": manifest["audit"]["head"],
            "replaced_data": occupied,
        },
    )
    db.session.flush()
    return RestoreResult(manifest, occupied)


def describe(manifest: dict[str, Any]) -> str:
    tables = manifest["tables"]
    return (
        f"{len(tables)} tables, {sum(tables.values())} rows, "
        f"{manifest['audit']['rows']} audit rows (head {manifest['audit']['head'][:16]}…), "
        f"{len(manifest['reports'])} report files"
    )
