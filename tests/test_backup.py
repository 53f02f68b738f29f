"""Backup and restore (`flask backup create|restore`): an archive of the database, the report
files and a manifest; restored into a fresh database (a new SQLite file, or a PostgreSQL
database the test creates) by a separate process, it holds what the source held when the
backup was taken, not what was written after, and proves it: counts, the audit chain, the
report files' sha256."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from tests.builders import at, days_ago, dose, enrol, world
from tests.reports_helpers import generate
from trialmgr import ROOT, create_app
from trialmgr.extensions import db
from trialmgr.reports.models import Report


def _ae(coord, subject, term="Headache"):
    resp = coord.post(
        "/adverse-events",
        json={
            "subject_code": subject["code"],
            "term": term,
            "soc": "Nervous system disorders",
            "onset_date": days_ago(3).isoformat(),
            "grade": 1,
            "causality": "unlikely",
            "expected": True,
            "site_awareness_at": at(days_ago(2)),
        },
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def _counts(uri: str) -> dict[str, int]:
    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {
                name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in names
            }
    finally:
        engine.dispose()


def _query(uri: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


@contextmanager
def _fresh_database(tmp_path: Path, is_postgres: bool) -> Iterator[str]:
    """A database that never saw a migration: a new SQLite file, or CREATE DATABASE."""
    if not is_postgres:
        yield f"sqlite:///{tmp_path / f'fresh-{uuid.uuid4().hex[:6]}.db'}"
        return
    url = sa.engine.make_url(os.environ["TEST_DATABASE_URL"])
    name = f"tm_restore_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _flask(uri: str, instance: Path, *args: str) -> subprocess.CompletedProcess:
    """A `flask` command in a process of its own, on the given database and instance."""
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "DATABASE_URL": uri,
        "TRIALMGR_INSTANCE": str(instance),
        "SECRET_KEY": "backup-test-secret-0123456789abcdef0123",
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def _app_on(uri: str, instance: Path, monkeypatch) -> Iterator[Flask]:
    """An app of this process on another database (conftest rebuilds the shared one after)."""
    monkeypatch.setenv("TRIALMGR_INSTANCE", str(instance))
    other = create_app({"SQLALCHEMY_DATABASE_URI": uri, "TESTING": True, "SECRET_KEY": "x" * 40})
    try:
        yield other
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _done_reports(app) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Report.file_path, Report.sha256).where(Report.status == "done")
        ).all()
    return {str(path): str(sha) for path, sha in rows}


def _backed_up_world(app, api, runner, tmp_path):
    """Two subjects (one dosed, with an AE), two reports; a backup; then more written."""
    w = world(api)
    lead, coord = w["lead"], w["coord"]
    first = enrol(coord, w["trial"], w["site"])
    enrol(coord, w["trial"], w["site"])
    assert dose(coord, first, days_ago(20)).status_code == 201
    _ae(coord, first)
    generate(lead, kind="site_enrollment", trial_id=w["trial"]["id"])
    generate(lead, kind="dsmb_safety", trial_id=w["trial"]["id"])
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    before = {"counts": _counts(uri), "reports": _done_reports(app)}
    made = runner.invoke(args=["backup", "create", "--to", str(tmp_path / "backups")])
    assert made.exit_code == 0, made.output
    (archive,) = (tmp_path / "backups").glob("trialmgr-backup-*.tar")
    # written after the backup: none of it may come back
    enrol(coord, w["trial"], w["site"])
    _ae(coord, first, term="Nausea")
    generate(lead, kind="feasibility", trial_id=w["trial"]["id"])
    return archive, before


def test_restore_into_a_fresh_database_gives_back_the_backed_up_state(
    app, api, runner, tmp_path, is_postgres, monkeypatch
):
    archive, before = _backed_up_world(app, api, runner, tmp_path)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        names = tar.getnames()
    assert manifest["tables"] == before["counts"]
    assert manifest["dialect"] == ("postgresql" if is_postgres else "sqlite")
    assert {n: e["sha256"] for n, e in manifest["reports"].items()} == before["reports"]
    assert len(before["reports"]) == 2
    assert sorted(names) == sorted(
        ["manifest.json", manifest["database"]["file"]]
        + [f"reports/{name}" for name in before["reports"]]
    )
    after_backup = _counts(app.config["SQLALCHEMY_DATABASE_URI"])
    assert after_backup["subject"] == before["counts"]["subject"] + 1

    with _fresh_database(tmp_path, is_postgres) as fresh:
        instance = tmp_path / "restored-instance"
        restored = _flask(fresh, instance, "backup", "restore", str(archive))
        assert restored.returncode == 0, restored.stderr
        assert "checked against the manifest" in restored.stdout

        counts = _counts(fresh)
        # everything as at the backup, plus the restore's own audit event and the checkpoint
        # its full walk of the chain left
        assert counts == {
            **before["counts"],
            "audit_event": before["counts"]["audit_event"] + 1,
            "audit_checkpoint": 1,
        }
        assert counts["subject"] == 2 and counts["adverse_event"] == 1
        ((action, prev_hash),) = _query(
            fresh, "SELECT action, prev_hash FROM audit_event ORDER BY id DESC LIMIT 1"
        )
        assert (action, prev_hash) == ("backup.restore", manifest["audit"]["head"])
        folder = instance / "reports"
        assert {p.name: _sha256(p) for p in folder.glob("*.pdf")} == before["reports"]
        stored = dict(_query(fresh, "SELECT file_path, sha256 FROM report WHERE status = 'done'"))
        assert stored == before["reports"]

        with _app_on(fresh, instance, monkeypatch) as restored_app:
            cli = restored_app.test_cli_runner()
            verified = cli.invoke(args=["audit", "verify"])
            assert verified.exit_code == 0, verified.output
            assert f"{manifest['audit']['rows'] + 1} rows" in verified.output
            # a database that holds data is refused, and left as it was
            again = cli.invoke(args=["backup", "restore", str(archive)])
            assert again.exit_code == 1
            assert "not empty" in again.output
            assert _counts(fresh) == counts
            # unless forced: the same state again (the earlier restore's event replaced)
            forced = cli.invoke(args=["backup", "restore", "--force", str(archive)])
            assert forced.exit_code == 0, forced.output
            assert _counts(fresh) == counts
            assert cli.invoke(args=["audit", "verify"]).exit_code == 0


def test_a_tampered_archive_is_refused_before_anything_is_written(
    app, api, runner, tmp_path, is_postgres, monkeypatch
):
    archive, before = _backed_up_world(app, api, runner, tmp_path)
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.startswith("reports/") and member.name.endswith(".pdf"):
                data = data.replace(b"%%EOF", b"%%EOX")  # one byte changed, same size
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    with _fresh_database(tmp_path, is_postgres) as fresh:
        instance = tmp_path / "tampered-instance"
        with _app_on(fresh, instance, monkeypatch) as fresh_app:
            refused = fresh_app.test_cli_runner().invoke(args=["backup", "restore", str(tampered)])
        assert refused.exit_code == 1
        assert "does not match its manifest entry" in refused.output
        assert _counts(fresh) == {}  # no table made
        assert not (instance / "reports").exists()
    assert before["reports"]


def test_a_backup_refuses_a_report_file_that_differs_from_its_record(app, api, runner, tmp_path):
    w = world(api)
    report = generate(w["lead"], kind="site_enrollment", trial_id=w["trial"]["id"])
    with app.app_context():
        path = db.session.get(Report, report["id"]).file_path
    stored = Path(app.instance_path) / "reports" / path
    stored.write_bytes(stored.read_bytes() + b"\n% appended")
    made = runner.invoke(args=["backup", "create", "--to", str(tmp_path / "backups")])
    assert made.exit_code == 1
    assert "does not match the sha256 its report records" in made.output
    assert list((tmp_path / "backups").iterdir()) == []  # no archive, whole or partial


def test_an_archive_of_the_other_engine_is_refused(app, runner, tmp_path, is_postgres):
    other = "sqlite" if is_postgres else "postgresql"
    archive = tmp_path / "other.tar"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": 1, "dialect": other}))
    with tarfile.open(archive, "w") as tar:
        tar.add(manifest, arcname="manifest.json")
    result = runner.invoke(args=["backup", "restore", str(archive)])
    assert result.exit_code == 1
    assert f"a {other} backup cannot be restored into" in result.output
