"""HL7 FHIR R4B export (issue 15.2): every resource parses back through fhir.resources R4B;
LOINC and UCUM of the nine analytes checked against the table below (typed from LOINC and
UCUM, not from trialmgr's grading table); seriousness, severity, causality, the product as
suspect entity; Bundle and NDJSON; audited; leads and admins only."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from tests.exports_world import TRICKY, constructed
from trialmgr.audit.models import AuditEvent
from trialmgr.extensions import db

# analyte: (LOINC code, UCUM code of the canonical unit)
LOINC_UCUM = {
    "ALT": ("1742-6", "U/L"),
    "AST": ("1920-8", "U/L"),
    "BILI": ("1975-2", "mg/dL"),
    "CREAT": ("2160-0", "mg/dL"),
    "PLT": ("777-3", "10*9/L"),
    "ANC": ("751-8", "10*9/L"),
    "HGB": ("718-7", "g/dL"),
    "WBC": ("6690-2", "10*9/L"),
    "LYMPH": ("731-0", "10*9/L"),
}


def _r4b(resource: dict):
    """Parse one resource back through the R4B models."""
    cls = get_fhir_model_class(resource["resourceType"])
    return cls.model_validate(resource)


def test_bundle_round_trips_through_fhir_resources(api, app):
    w = constructed(api)
    resp = w["lead"].get(f"/trials/{w['trial']['id']}/export/fhir")
    assert resp.status_code == 200 and resp.mimetype == "application/fhir+json"
    bundle = Bundle.model_validate_json(resp.data)
    assert bundle.type == "collection"
    resources = [e.resource for e in bundle.entry]
    for entry in json.loads(resp.data)["entry"]:
        _r4b(entry["resource"])
    kinds = {r.get_resource_type() for r in resources}
    assert kinds >= {
        "ResearchStudy",
        "ResearchSubject",
        "Patient",
        "AdverseEvent",
        "Observation",
        "Consent",
        "Location",
        "Organization",
        "Medication",
    }
    study = next(r for r in resources if r.get_resource_type() == "ResearchStudy")
    assert study.status == "active" and [s.reference for s in study.site] == ["Location/site-S01"]
    subjects = [r for r in resources if r.get_resource_type() == "ResearchSubject"]
    assert len(subjects) == 6
    withdrawn = next(s for s in subjects if s.individual.display == w["subjects"][-1]["code"])
    assert withdrawn.status == "withdrawn"
    patients = [r for r in resources if r.get_resource_type() == "Patient"]
    assert {str(p.birthDate) for p in patients} == {"2015"}  # the year, nothing more
    assert all(p.name is None and p.address is None for p in patients)
    (ae,) = [r for r in resources if r.get_resource_type() == "AdverseEvent"]
    assert ae.event.text == TRICKY
    assert ae.seriousness.coding[0].code == "serious"
    assert ae.severity.coding[0].code == "moderate"
    (suspect,) = ae.suspectEntity
    assert suspect.instance.reference.startswith("Medication/product-")
    assert suspect.causality[0].assessment.coding[0].code == "Possible"
    with app.app_context():
        event = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == "export.fhir")
        ).scalar_one()
        assert event.changes["sha256"] == hashlib.sha256(resp.data).hexdigest()
        assert event.changes["rows"]["ResearchSubject"] == 6
        assert event.changes["filters"] == {"format": "json"}


def test_lab_observations_carry_loinc_ucum_and_interpretation(api):
    w = constructed(api)
    resp = w["lead"].get(f"/trials/{w['trial']['id']}/export/fhir?format=ndjson")
    assert resp.status_code == 200 and resp.mimetype == "application/fhir+ndjson"
    lines = [json.loads(line) for line in resp.get_data(as_text=True).splitlines()]
    parsed = [_r4b(line) for line in lines]
    labs = [
        r
        for r in parsed
        if r.get_resource_type() == "Observation"
        and r.category[0].coding
        and r.category[0].coding[0].code == "laboratory"
    ]
    assert len(labs) == 2
    for obs in labs:
        analyte = {v[0]: k for k, v in LOINC_UCUM.items()}[obs.code.coding[0].code]
        assert obs.code.coding[0].system == "http://loinc.org"
        assert obs.valueQuantity.system == "http://unitsofmeasure.org"
        assert obs.valueQuantity.code == LOINC_UCUM[analyte][1]
    alt = next(o for o in labs if o.code.coding[0].code == "1742-6")
    assert float(alt.valueQuantity.value) == 130
    assert alt.interpretation[0].coding[0].code == "H"  # 130 U/L, ULN 40: grade 2
    assert float(alt.referenceRange[0].high.value) == 40
    plt = next(o for o in labs if o.code.coding[0].code == "777-3")
    assert plt.interpretation[0].coding[0].code == "N"
    efficacy = [r for r in parsed if r.get_resource_type() == "Observation" and r.category[0].text]
    assert sorted(float(o.valueQuantity.value) for o in efficacy) == [1.5] * 5 + [22.25]


def test_every_analyte_has_its_loinc_and_ucum():
    from trialmgr.exports.services import fhir_resources

    for code, (loinc, ucum) in LOINC_UCUM.items():
        analyte = fhir_resources.ANALYTES[code]
        assert (analyte.loinc, analyte.ucum) == (loinc, ucum), code
    assert set(fhir_resources.ANALYTES) == set(LOINC_UCUM)


def test_interpretation_follows_the_grade_and_direction():
    from trialmgr.exports.services.fhir_resources import interpretation

    cases = [("ALT", 0, "N"), ("ALT", 2, "H"), ("AST", 3, "HH"), ("PLT", 1, "L"), ("ANC", 4, "LL")]
    for analyte, grade, code in cases:
        assert interpretation(analyte, grade)["coding"][0]["code"] == code


def test_only_leads_and_admins_export_fhir(api):
    w = constructed(api)
    url = f"/trials/{w['trial']['id']}/export/fhir"
    assert w["coord"].get(url).status_code == 403
    assert api.as_role("safety_monitor").get(url).status_code == 403
    assert api.as_role("admin").get(url + "?format=ndjson").status_code == 200
    assert w["lead"].get(url + "?format=xml").status_code == 422
