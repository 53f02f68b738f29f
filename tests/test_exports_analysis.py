"""The de-identified analysis archive (issue 15.3): per-subject date shifts (same non-zero
offset for every date of a subject, not the same for all subjects, kept for re-exports),
exact study days, birth year only, free text only when confirmed, small cells suppressed,
and an audit row whose sha256 is that of the bytes received."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from datetime import date, datetime

import sqlalchemy as sa

from tests.exports_world import TRICKY, constructed
from trialmgr.audit.models import AuditEvent
from trialmgr.efficacy.models import EfficacyMeasurement
from trialmgr.enrollment.models import Subject, Visit
from trialmgr.extensions import db
from trialmgr.safety.models import AdverseEvent, LabResult


def _export(client, trial_id, query=""):
    resp = client.get(f"/trials/{trial_id}/export/analysis.zip{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == "application/zip"
    return resp


def _tables(data: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            name: list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
            for name in archive.namelist()
            if name.endswith(".csv")
        }


def _day(value: str) -> date:
    return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)


def _real_dates(app, codes):
    """(table, key) -> real date, per subject code, read from the database."""
    real: dict[str, dict[tuple[str, str], date]] = {c: {} for c in codes}
    with app.app_context():
        for s in db.session.execute(sa.select(Subject)).scalars():
            real[s.code][("subjects", "enrolled_on")] = s.enrolled_on
            real[s.code][("subjects", "consented_on")] = s.consented_on
            if s.withdrawn_on:
                real[s.code][("subjects", "withdrawn_on")] = s.withdrawn_on
            for v in db.session.execute(sa.select(Visit).where(Visit.subject_id == s.id)).scalars():
                real[s.code][("visits", v.name)] = v.scheduled_on
                if v.done_on:
                    real[s.code][("visits.done", v.name)] = v.done_on
        for ae in db.session.execute(sa.select(AdverseEvent)).scalars():
            real[ae.subject.code][("ae", str(ae.id))] = ae.onset_date
        for m in db.session.execute(sa.select(EfficacyMeasurement)).scalars():
            real[m.subject.code][("efficacy", str(m.value.normalize()))] = m.measured_on
        for lab in db.session.execute(sa.select(LabResult)).scalars():
            real[lab.subject.code][("labs", lab.analyte)] = lab.collected_at.date()
    return real


def _shifted_dates(tables):
    shifted: dict[str, dict[tuple[str, str], date]] = {}
    for r in tables["subjects.csv"]:
        mine = shifted.setdefault(r["subject"], {})
        mine[("subjects", "enrolled_on")] = _day(r["enrolled_on"])
        mine[("subjects", "consented_on")] = _day(r["consented_on"])
        if r["withdrawn_on"]:
            mine[("subjects", "withdrawn_on")] = _day(r["withdrawn_on"])
    for r in tables["visits.csv"]:
        shifted[r["subject"]][("visits", r["visit"])] = _day(r["scheduled_on"])
        if r["done_on"]:
            shifted[r["subject"]][("visits.done", r["visit"])] = _day(r["done_on"])
    for r in tables["adverse_events.csv"]:
        shifted[r["subject"]][("ae", r["event"])] = _day(r["onset_date"])
    for r in tables["efficacy.csv"]:
        shifted[r["subject"]][("efficacy", r["value"])] = _day(r["measured_on"])
    for r in tables["labs.csv"]:
        shifted[r["subject"]][("labs", r["analyte"])] = _day(r["collected_at"])
    return shifted


def test_every_date_of_a_subject_moves_by_one_secret_offset(api, app):
    w = constructed(api)
    tables = _tables(_export(w["lead"], w["trial"]["id"]).data)
    shifted = _shifted_dates(tables)
    real = _real_dates(app, shifted)
    offsets = {}
    for code, dates in shifted.items():
        assert set(dates) == set(real[code])
        diffs = {(dates[key] - real[code][key]).days for key in dates}
        assert len(diffs) == 1, (code, diffs)  # the same offset for every date of a subject
        (offsets[code],) = diffs
        assert offsets[code] != 0 and 30 <= abs(offsets[code]) <= 365
        assert all(dates[key] != real[code][key] for key in dates)  # no real date left
    assert len(offsets) == 6 and len(set(offsets.values())) > 1  # not one shift for all
    # the (kept) offsets are not written to the audit trail either
    with app.app_context():
        trail = " ".join(
            str(e.changes) for e in db.session.execute(sa.select(AuditEvent)).scalars()
        )
    assert "offset_days" not in trail


def test_study_days_are_exact_and_birth_year_only(api, app):
    w = constructed(api)
    tables = _tables(_export(w["lead"], w["trial"]["id"]).data)
    first = w["subjects"][0]
    event = next(r for r in tables["adverse_events.csv"] if r["subject"] == first["code"])
    assert event["onset_day"] == "10" and event["resolution_day"] == "20"
    assert event["seriousness_criterion"] == "hospitalisation" and event["serious"] == "true"
    day7 = next(
        r for r in tables["visits.csv"] if r["subject"] == first["code"] and r["visit"] == "Day 7"
    )
    assert day7["done_day"] == "7" and day7["planned_day"] == "7"
    labs = [r for r in tables["labs.csv"] if r["subject"] == first["code"]]
    assert {r["collected_day"] for r in labs} == {"9"} and {r["analyte"] for r in labs} == {
        "ALT",
        "PLT",
    }
    baseline = next(
        r
        for r in tables["efficacy.csv"]
        if r["subject"] == first["code"] and r["baseline"] == "true"
    )
    assert baseline["measured_day"] == "-2"
    header = set(tables["subjects.csv"][0])
    assert "birth_year" in header and not {"birth_date", "date_of_birth"} & header
    assert {r["birth_year"] for r in tables["subjects.csv"]} == {"2015"}


def test_re_export_shifts_the_same_way(api):
    w = constructed(api)
    one = _tables(_export(w["lead"], w["trial"]["id"]).data)
    admin = api.as_role("admin")
    two = _tables(_export(admin, w["trial"]["id"]).data)
    assert one["subjects.csv"] == two["subjects.csv"]
    assert one["visits.csv"] == two["visits.csv"]


def test_free_text_is_left_out_unless_confirmed(api, app):
    w = constructed(api)
    lead, trial_id = w["lead"], w["trial"]["id"]
    plain = _export(lead, trial_id).data
    tables = _tables(plain)
    assert "narrative" not in tables["adverse_events.csv"][0]
    assert "notes" not in tables["visits.csv"][0]
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        for name in archive.namelist():
            assert "Ünïcødé" not in archive.read(name).decode("utf-8"), name
    with app.app_context():
        before = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar()
    refused = lead.get(f"/trials/{trial_id}/export/analysis.zip?include_free_text=1")
    assert refused.status_code == 422 and "confirm" in refused.json["errors"]
    with app.app_context():
        after = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar()
    assert after == before  # nothing written
    confirmed = _tables(_export(lead, trial_id, "?include_free_text=1&confirm=1").data)
    event = confirmed["adverse_events.csv"][0]
    assert event["narrative"] == TRICKY and event["term"] == TRICKY
    withdrawn = next(r for r in confirmed["subjects.csv"] if r["withdrawal_reason"])
    assert withdrawn["withdrawal_reason"] == TRICKY


def test_aggregate_tables_suppress_counts_below_five(api):
    w = constructed(api)
    tables = _tables(_export(w["lead"], w["trial"]["id"]).data)
    for name in ("aggregate_subjects.csv", "aggregate_adverse_events.csv"):
        for row in tables[name]:
            for column in ("subjects", "events"):
                if column in row:
                    assert row[column] == "<5" or int(row[column]) >= 5, (name, row)
    cohort2 = [r for r in tables["aggregate_subjects.csv"] if r["cohort"] == "C2"]
    assert cohort2 and all(r["subjects"] == "<5" for r in cohort2)
    (ae,) = tables["aggregate_adverse_events.csv"]  # one subject's one event: suppressed
    assert (ae["subjects"], ae["events"]) == ("<5", "<5")


def test_archive_has_dictionary_and_readme(api):
    w = constructed(api)
    data = _export(w["lead"], w["trial"]["id"]).data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        readme = archive.read("README.md").decode()
    assert "shifted by the same number of days" in readme and "<5" in readme
    dictionary = _tables(data)["data_dictionary.csv"]
    grade = next(
        r for r in dictionary if (r["file"], r["variable"]) == ("adverse_events.csv", "grade")
    )
    assert grade["codelist"].startswith("1=Mild") and grade["type"] == "integer"
    onset = next(
        r for r in dictionary if (r["file"], r["variable"]) == ("adverse_events.csv", "onset_date")
    )
    assert onset["type"] == "date (shifted per subject)"
    assert not any(r["variable"] == "narrative" for r in dictionary)


def test_export_is_audited_with_the_sha256_of_the_bytes_received(api, app):
    w = constructed(api)
    resp = _export(w["lead"], w["trial"]["id"])
    received = hashlib.sha256(resp.data).hexdigest()
    with app.app_context():
        event = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == "export.analysis")
        ).scalar_one()
        assert event.actor == w["lead"].user["email"]
        assert event.entity == "trial" and event.entity_id == str(w["trial"]["id"])
        assert event.changes["sha256"] == received and event.changes["bytes"] == len(resp.data)
        assert event.changes["filters"]["include_free_text"] is False
        assert event.changes["filters"]["date_offsets_drawn"] == 6
        assert event.changes["rows"]["subjects.csv"] == 6
    assert resp.headers["Repr-Digest"].startswith("sha-256=:")
    tables = _tables(resp.data)
    assert len(tables["adverse_events.csv"]) == event.changes["rows"]["adverse_events.csv"]


def test_only_leads_and_admins_export(api):
    w = constructed(api)
    trial_id = w["trial"]["id"]
    monitor = api.as_role("safety_monitor")
    for client in (w["coord"], monitor):
        resp = client.get(f"/trials/{trial_id}/export/analysis.zip")
        assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    assert api.as_role("admin").get(f"/trials/{trial_id}/export/analysis.zip").status_code == 200
    assert w["lead"].get("/trials/999999/export/analysis.zip").status_code == 404
