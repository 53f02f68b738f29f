"""`flask export fhir` and `flask export analysis` (issue 15): the file written is the same
export the API sends (parsed back), the run is audited as the system with the sha256 of
the file, the analysis archive leaves free text out, and an unknown trial is refused."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle

from tests.exports_world import TRICKY, constructed
from trialmgr.audit.models import AuditEvent
from trialmgr.extensions import db


def _event(app, action: str) -> AuditEvent:
    with app.app_context():
        return db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == action)
        ).scalar_one()


def test_fhir_bundle_file_parses_and_is_audited(api, app, runner, tmp_path):
    w = constructed(api)
    out = tmp_path / "gt.json"
    result = runner.invoke(args=["export", "fhir", "--trial", w["trial"]["code"], "-o", str(out)])
    assert result.exit_code == 0, result.output
    bundle = Bundle.model_validate(json.loads(out.read_bytes()))
    kinds = {entry.resource.get_resource_type() for entry in bundle.entry}
    assert {"ResearchStudy", "ResearchSubject", "Patient", "AdverseEvent"} <= kinds
    subjects = [e for e in bundle.entry if e.resource.get_resource_type() == "ResearchSubject"]
    assert len(subjects) == len(w["subjects"])
    event = _event(app, "export.fhir")
    assert event.actor == "system:cli"
    assert event.changes["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"sha256 {event.changes['sha256']}" in result.output


def test_fhir_ndjson_has_one_resource_per_line(api, runner, tmp_path):
    w = constructed(api)
    out = tmp_path / "gt.ndjson"
    args = ["export", "fhir", "--trial", w["trial"]["code"], "--format", "ndjson", "-o", str(out)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    resources = [json.loads(line) for line in lines]
    assert all("resourceType" in r for r in resources)
    assert sum(r["resourceType"] == "ResearchSubject" for r in resources) == len(w["subjects"])


def test_analysis_archive_file_leaves_free_text_out_and_is_audited(api, app, runner, tmp_path):
    w = constructed(api)
    out = tmp_path / "analysis.zip"
    args = ["export", "analysis", "--trial", w["trial"]["code"].lower(), "-o", str(out)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        names = archive.namelist()
        everything = b"".join(archive.read(n) for n in names).decode("utf-8")
    assert "data_dictionary.csv" in names
    assert any(n.startswith("subjects") for n in names)
    # the free text typed in the world (notes, AE term and narrative, reasons) is left out;
    # its non-Latin words survive CSV quoting, so their absence is the test
    assert "日本語" in TRICKY and "日本語" not in everything
    assert "README" in " ".join(names) or any(n.lower().startswith("readme") for n in names)
    event = _event(app, "export.analysis")
    assert event.actor == "system:cli"
    assert event.changes["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_unknown_trial_is_refused_and_nothing_is_audited(app, runner, tmp_path):
    for kind in ("fhir", "analysis"):
        result = runner.invoke(args=["export", kind, "--trial", "NOPE", "-o", str(tmp_path / kind)])
        assert result.exit_code != 0
        assert "No trial NOPE" in result.output
    with app.app_context():
        count = db.session.execute(
            sa.select(sa.func.count()).where(AuditEvent.action.like("export.%"))
        ).scalar_one()
    assert count == 0
