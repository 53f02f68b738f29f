"""HL7 FHIR R4B resources from trialmgr rows, as the JSON objects the export writes. Their
shape is `fhir.resources`' (its R4B package): the export validates the first resource of
each type through it, and the tests parse every resource back (decision 0012: validating
each of hundreds of thousands of resources costs milliseconds apiece). Codes: LOINC and
UCUM for the nine graded analytes (from the grading table), HL7 code systems for
seriousness, severity, outcome, causality (WHO-UMC), observation category and
interpretation. Subjects appear by pseudonymous code only: the
Patient resource holds the code, sex and birth year, nothing else."""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from trialmgr.enrollment.models import Trial
from trialmgr.exports.services.roster import SubjectInfo
from trialmgr.safety.grading import ANALYTES, INCREASED

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"
ORPHANET = "http://www.orpha.net"
SUBJECT_CODES = "urn:trialmgr:subject"
Resource = dict[str, Any]
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"

STUDY_STATUS = {
    "setup": "approved",
    "open": "active",
    "paused": "temporarily-closed-to-accrual-and-intervention",
    "closed": "closed-to-accrual",
    "ended": "completed",
}
SUBJECT_STATUS = {
    "enrolled": "on-study",
    "dosed": "on-study-intervention",
    "in_follow_up": "follow-up",
    "completed": "off-study",
    "withdrawn": "withdrawn",
    "lost_to_follow_up": "off-study",
    "died": "off-study",
}
# CTCAE grade -> HL7 adverse-event-severity (mild | moderate | severe).
SEVERITY = {1: "mild", 2: "moderate", 3: "severe", 4: "severe", 5: "severe"}
OUTCOME = {
    "recovering": "recovering",
    "recovered": "resolved",
    "recovered_with_sequelae": "resolvedWithSequelae",
    "not_recovered": "ongoing",
    "fatal": "fatal",
    "unknown": "unknown",
}
# trialmgr causality -> WHO-UMC (adverse-event-causality-assess); "unrelated" has none.
CAUSALITY = {
    "definite": "Certain",
    "probable": "Probably-Likely",
    "possible": "Possible",
    "unlikely": "Unlikely",
}
GRADE_NAMES = {1: "Mild", 2: "Moderate", 3: "Severe", 4: "Life-threatening", 5: "Death"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class ExactFloat(float):
    """A float the export writes with json.dumps: orjson writes the ones below 1e-4 (and
    might the ones of 1e16 and more) differently from Python's repr (`0.00001`, not
    `1e-05`). orjson refuses float subclasses, so a resource holding one is written by
    json.dumps, byte for byte as before."""


def _number(value: Decimal) -> int | float:
    """A JSON number: integral values as integers, others as the nearest float."""
    if value == value.to_integral():
        return int(value)
    number = float(value)
    return number if 1e-4 <= abs(number) < 1e16 else ExactFloat(number)


def patient_ref(info: SubjectInfo) -> dict[str, Any]:
    return {"reference": f"Patient/{info.code}", "display": info.code}


def study_id(trial: Trial) -> str:
    return _study_id(trial.code)


@functools.cache
def _study_id(code: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in code)


def _phase(phase: str | None) -> dict[str, Any]:
    text = (phase or "").lower()
    if "1" in text and "2" in text:
        code = "phase-1-phase-2"
    elif "3" in text:
        code = "phase-3"
    elif "2" in text:
        code = "phase-2"
    elif "1" in text:
        code = "phase-1"
    else:
        code = "n-a"
    out: dict[str, Any] = {"coding": [_coding(f"{TERMINOLOGY}/research-study-phase", code)]}
    if phase:
        out["text"] = phase
    return out


def research_study(trial: Trial, site_codes: list[str]) -> Resource:
    study: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": study_id(trial),
        "identifier": [{"system": "urn:trialmgr:trial", "value": trial.code}],
        "title": trial.title,
        "status": STUDY_STATUS[trial.status],
        "phase": _phase(trial.phase),
    }
    if site_codes:
        study["site"] = [{"reference": f"Location/site-{code}"} for code in site_codes]
    if trial.cohorts:
        study["arm"] = [
            {"name": c.label, "description": f"{c.dose} {c.dose_unit}"} for c in trial.cohorts
        ]
    if trial.orphacode:
        condition: dict[str, Any] = {"coding": [_coding(ORPHANET, f"ORPHA:{trial.orphacode}")]}
        if trial.indication:
            condition["text"] = trial.indication
        study["condition"] = [condition]
    return study


def organization(partner_id: int, name: str, short_name: str, country: str) -> Resource:
    return {
        "resourceType": "Organization",
        "id": f"partner-{partner_id}",
        "identifier": [{"system": "urn:trialmgr:partner", "value": short_name}],
        "name": name,
        "address": [{"country": country}],
    }


def location(code: str, name: str, status: str, country: str, partner_id: int) -> Resource:
    return {
        "resourceType": "Location",
        "id": f"site-{code}",
        "identifier": [{"system": "urn:trialmgr:site", "value": code}],
        "status": {"active": "active", "suspended": "suspended"}.get(status, "inactive"),
        "name": name,
        "address": {"country": country},
        "managingOrganization": {"reference": f"Organization/partner-{partner_id}"},
    }


def product(trial: Trial) -> Resource:
    """The investigational product, the suspect entity of every adverse event."""
    return {
        "resourceType": "Medication",
        "id": f"product-{study_id(trial)}",
        "code": {"text": f"{trial.code} investigational {trial.vector_type} vector"},
    }


def patient(info: SubjectInfo) -> Resource:
    return {
        "resourceType": "Patient",
        "id": info.code,
        "identifier": [{"system": SUBJECT_CODES, "value": info.code}],
        "gender": {"F": "female", "M": "male"}.get(info.sex, "unknown"),
        "birthDate": str(info.birth_year),
    }


def research_subject(trial: Trial, info: SubjectInfo, row: Any, consent_id: int | None) -> Resource:
    end = row.withdrawn_on or row.ended_on
    subject: dict[str, Any] = {
        "resourceType": "ResearchSubject",
        "id": f"rs-{info.code}",
        "identifier": [{"system": SUBJECT_CODES, "value": info.code}],
        "status": SUBJECT_STATUS[info.status],
        "period": {"start": _iso(row.enrolled_on)},
        "study": {"reference": f"ResearchStudy/{study_id(trial)}"},
        "individual": patient_ref(info),
        "assignedArm": info.cohort_label,
    }
    if end is not None:
        subject["period"]["end"] = _iso(end)
    if consent_id is not None:
        subject["consent"] = {"reference": f"Consent/consent-{consent_id}"}
    return subject


def consent(trial: Trial, info: SubjectInfo, row: Any) -> Resource:
    return {
        "resourceType": "Consent",
        "id": f"consent-{row.id}",
        "status": "active",
        "scope": {"coding": [_coding(f"{TERMINOLOGY}/consentscope", "research")]},
        "category": [{"coding": [_coding(LOINC, "59284-0", "Consent Document")]}],
        "patient": patient_ref(info),
        "dateTime": _iso(row.consented_on),
        "policy": [{"uri": f"urn:trialmgr:consent:{trial.code}:{row.version}"}],
        "policyRule": {"text": f"{trial.code} consent form version {row.version}"},
    }


def adverse_event(trial: Trial, info: SubjectInfo, ae: Any) -> Resource:
    event: dict[str, Any] = {"text": ae.term}
    if ae.pt_code:
        event["coding"] = [_coding(MEDDRA, ae.pt_code, ae.pt_term)]
    causality: dict[str, Any] = {"text": ae.causality}
    if ae.causality in CAUSALITY:
        code = CAUSALITY[ae.causality]
        causality["coding"] = [_coding(f"{TERMINOLOGY}/adverse-event-causality-assess", code)]
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": f"ae-{ae.id}",
        "identifier": {"system": "urn:trialmgr:adverse-event", "value": str(ae.id)},
        "actuality": "actual",
        "event": event,
        "subject": patient_ref(info),
        "date": _iso(ae.onset_date),
        "detected": _iso(ae.site_awareness_at),
        "seriousness": {
            "coding": [
                _coding(
                    f"{TERMINOLOGY}/adverse-event-seriousness",
                    "serious" if ae.serious else "non-serious",
                )
            ],
        },
        "severity": {
            "coding": [_coding(f"{TERMINOLOGY}/adverse-event-severity", SEVERITY[ae.grade])],
            "text": f"CTCAE grade {ae.grade} ({GRADE_NAMES[ae.grade]})",
        },
        "suspectEntity": [
            {
                "instance": {"reference": f"Medication/product-{study_id(trial)}"},
                "causality": [{"assessment": causality}],
            }
        ],
        "study": [{"reference": f"ResearchStudy/{study_id(trial)}"}],
    }
    if ae.seriousness_criteria:
        resource["seriousness"]["text"] = ", ".join(ae.seriousness_criteria)
    if ae.outcome:
        resource["outcome"] = {
            "coding": [_coding(f"{TERMINOLOGY}/adverse-event-outcome", OUTCOME[ae.outcome])]
        }
    return resource


@functools.cache
def interpretation(analyte: str, grade: int) -> dict[str, Any]:
    """HL7 v3 ObservationInterpretation from the CTCAE grade: N at grade 0; H/L at grades 1-2;
    HH/LL (critical) at 3-4, by the analyte's direction."""
    if grade == 0:
        code, display = "N", "Normal"
    elif ANALYTES[analyte].direction == INCREASED:
        code, display = ("H", "High") if grade <= 2 else ("HH", "Critical high")
    else:
        code, display = ("L", "Low") if grade <= 2 else ("LL", "Critical low")
    system = f"{TERMINOLOGY}/v3-ObservationInterpretation"
    return {"coding": [_coding(system, code, display)], "text": f"CTCAE v5.0 grade {grade}"}


# The parts every lab Observation of an analyte shares (written, never changed).
_LAB_CATEGORY = [{"coding": [_coding(f"{TERMINOLOGY}/observation-category", "laboratory")]}]


@functools.cache
def _lab_code(name: str) -> dict[str, Any]:
    analyte = ANALYTES[name]
    return {
        "coding": [_coding(LOINC, analyte.loinc, analyte.loinc_display)],
        "text": analyte.label,
    }


def lab_observation(info: SubjectInfo, lab: Any) -> Resource:
    analyte = ANALYTES[lab.analyte]
    quantity = {"value": _number(lab.value_canonical), "unit": analyte.unit, "system": UCUM}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"lab-{lab.id}",
        "status": "final",
        "category": _LAB_CATEGORY,
        "code": _lab_code(lab.analyte),
        "subject": patient_ref(info),
        "effectiveDateTime": _iso(lab.collected_at),
        "valueQuantity": {**quantity, "code": analyte.ucum},
        "interpretation": [interpretation(lab.analyte, lab.grade)],
    }
    if lab.value:
        factor = lab.value_canonical / lab.value
        bounds = {}
        for key, limit in (("low", lab.lln), ("high", lab.uln)):
            if limit is not None:
                bounds[key] = {**quantity, "value": _number(limit * factor), "code": analyte.ucum}
        if bounds:
            resource["referenceRange"] = [bounds]
    return resource


def efficacy_observation(info: SubjectInfo, m: Any) -> Resource:
    observation: Resource = {
        "resourceType": "Observation",
        "id": f"efficacy-{m.id}",
        "status": "final",
        "category": [{"text": "efficacy"}],
        "code": {
            "coding": [_coding("urn:trialmgr:endpoint", m.endpoint, m.endpoint_name)],
            "text": m.endpoint_name,
        },
        "subject": patient_ref(info),
        "effectiveDateTime": _iso(m.measured_on),
        "valueQuantity": {"value": _number(m.value), "unit": m.unit},
    }
    if m.baseline:
        observation["note"] = [{"text": "baseline"}]
    return observation


def validate(resource: Resource) -> None:
    """Parse a resource through fhir.resources R4B (imported here: its models cost memory
    that only an export needs); raises if its shape is not R4B's."""
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
