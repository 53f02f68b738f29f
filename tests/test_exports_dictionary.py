"""The data dictionary (issue 15.4): generated from the in-schemas, with the trial's own
code lists and units; JSON, CSV and a page."""

from __future__ import annotations

import csv
import io

from marshmallow import Schema, fields, validate

from tests.builders import world
from trialmgr.exports.services import dictionary
from trialmgr.safety.models import ANALYTE_CODES, CAUSALITY, SERIOUSNESS_CRITERIA
from trialmgr.safety.schemas import AdverseEventIn


def _variables(client, trial_id):
    resp = client.get(f"/trials/{trial_id}/data-dictionary")
    assert resp.status_code == 200, resp.json
    found = {}
    for v in resp.json["variables"]:
        v["codelist"] = {c["code"]: c["label"] for c in v["codelist"]}
        found[(v["domain"], v["name"])] = v
    return found


def test_dictionary_lists_every_adverse_event_field_with_its_rules(api):
    w = world(api)
    found = _variables(w["lead"], w["trial"]["id"])
    plumbing = {"task_id", "lab_result_id", "source_visit_id"}
    for name, field in AdverseEventIn().fields.items():
        if name in plumbing:
            assert ("adverse_events", name) not in found
            continue
        assert found[("adverse_events", name)]["required"] == field.required
    grade = found[("adverse_events", "grade")]
    assert (grade["type"], grade["minimum"], grade["maximum"]) == ("integer", 1, 5)
    assert grade["codelist"] == {
        "1": "Mild",
        "2": "Moderate",
        "3": "Severe",
        "4": "Life-threatening",
        "5": "Death",
    }
    assert list(found[("adverse_events", "causality")]["codelist"]) == list(CAUSALITY)
    seriousness = found[("adverse_events", "seriousness_criteria")]
    assert seriousness["type"] == "list of string"
    assert list(seriousness["codelist"]) == list(SERIOUSNESS_CRITERIA)
    assert found[("adverse_events", "narrative")]["free_text"] is True
    assert found[("adverse_events", "narrative")]["max_length"] == 10000
    assert "1900" not in found[("screening", "birth_year")]["rules"]  # a check function
    assert found[("screening", "birth_year")]["rules"] == ["birth year"]


def test_dictionary_carries_the_trials_units_and_code_lists(api):
    w = world(api)
    lead, trial = w["lead"], w["trial"]
    lead.post(
        f"/trials/{trial['id']}/endpoints",
        json={"code": "FIX", "name": "Factor IX", "unit": "IU/dL", "direction": "higher_is_better"},
    )
    found = _variables(lead, trial["id"])
    assert found[("efficacy", "value")]["unit"] == "FIX IU/dL"
    assert list(found[("labs", "analyte")]["codelist"]) == list(ANALYTE_CODES)
    assert "ALT U/L" in found[("labs", "value")]["unit"]
    assert found[("dosing", "dose")]["unit"] == "vg/kg"
    cohorts = found[("enrolment", "cohort_id")]["codelist"]
    assert [label.split(":")[0] for label in cohorts.values()] == ["C1", "C2", "C3"]
    visits = lead.get(f"/trials/{trial['id']}/data-dictionary").json["visits"]
    assert visits == {"Day 7": "study day 7", "Week 4": "study day 28", "Week 12": "study day 84"}


def test_dictionary_follows_a_schema_change(api, monkeypatch):
    """Nothing is hand-written: a form's schema is read as it is."""

    class Probe(Schema):
        dose_level = fields.Integer(required=True, validate=validate.Range(min=2, max=7))
        route = fields.String(validate=validate.OneOf(["iv", "intrathecal"]))

    monkeypatch.setattr(dictionary, "FORMS", (dictionary.Form("probe", "Probe", Probe),))
    w = world(api)
    found = _variables(w["lead"], w["trial"]["id"])
    assert set(found) == {("probe", "dose_level"), ("probe", "route")}
    assert found[("probe", "dose_level")]["rules"] == ["2 <= value <= 7"]
    assert found[("probe", "dose_level")]["required"] is True
    assert list(found[("probe", "route")]["codelist"]) == ["iv", "intrathecal"]


def test_dictionary_as_csv(api):
    w = world(api)
    resp = w["coord"].get(f"/trials/{w['trial']['id']}/data-dictionary?format=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    grade = next(r for r in rows if (r["domain"], r["name"]) == ("adverse_events", "grade"))
    assert grade["required"] == "yes" and grade["minimum"] == "1" and grade["maximum"] == "5"
    assert grade["codelist"].startswith("1=Mild; 2=Moderate")


def test_dictionary_format_must_be_known(api):
    w = world(api)
    resp = w["lead"].get(f"/trials/{w['trial']['id']}/data-dictionary?format=xml")
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"


def test_dictionary_page_shows_forms_and_rules(api, client):
    w = world(api)
    client.post(
        "/login", data={"email": w["coord"].user["email"], "password": "correct-horse-battery"}
    )
    page = client.get(f"/trials/{w['trial']['id']}/data-dictionary")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Adverse events" in html and "seriousness_criteria" in html
    assert "Life-threatening" in html
