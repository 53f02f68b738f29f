"""CDISC ODM 1.3.2 study metadata, built with odmlib's ODM 1.3.2 model: study events (the
screening, the common forms, the dosing and each visit), forms, item groups and items, code
lists and measurement units. Items are read from the data dictionary (so from the
in-schemas), with the few stored values no form enters (status, grades computed, canonical
lab values) described here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import odmlib.odm_1_3_2.model as odm
import sqlalchemy as sa

from trialmgr.auth.models import User
from trialmgr.efficacy.models import EfficacyEndpoint
from trialmgr.enrollment.models import (
    SUBJECT_STATUSES,
    VISIT_STATUSES,
    Subject,
    Trial,
    Visit,
)
from trialmgr.exports.services import dictionary
from trialmgr.exports.services.dictionary import CTCAE_GRADES, Variable
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.safety.grading import ANALYTES
from trialmgr.safety.models import SERIOUSNESS_CRITERIA

SYSTEM_USER = "USR.SYSTEM"

# Stored values that no in-schema describes, and in-schema fields stored differently.
_OWN = {
    ("screening", "outcome"): (
        "text",
        "Screening outcome",
        "pending eligible screen_failed declined",
    ),
    ("enrolment", "cohort"): ("text", "Cohort label", None),
    ("enrolment", "status"): ("text", "Subject status", " ".join(SUBJECT_STATUSES)),
    ("consent", "version"): ("text", "Consent form version", None),
    ("visits", "status"): ("text", "Visit status", " ".join(VISIT_STATUSES)),
    ("visits", "scheduled_on"): ("date", "Scheduled date", None),
    ("adverse_events", "seriousness_criterion"): (
        "text",
        "Seriousness criterion (ICH E2A)",
        " ".join(SERIOUSNESS_CRITERIA),
    ),
    ("labs", "value_canonical"): ("float", "Value in the canonical unit", None),
    ("labs", "grade"): ("integer", "CTCAE v5.0 grade (0 normal)", None),
    ("labs", "hys_law"): ("boolean", "Hy's law screen positive", None),
    ("efficacy", "endpoint"): ("text", "Endpoint code", None),
    ("efficacy", "visit"): ("text", "Visit name", None),
}
_ODM_TYPES = {
    "string": "text",
    "decimal": "float",
    "integer": "integer",
    "float": "float",
    "date": "date",
    "datetime": "datetime",
    "boolean": "boolean",
}


@dataclass(frozen=True)
class OdmForm:
    key: str
    name: str
    repeating: bool
    items: tuple[tuple[str, str], ...]


FORMS = (
    OdmForm(
        "SCREENING",
        "Screening",
        False,
        tuple(
            ("screening", n)
            for n in ("screened_on", "orphacode", "birth_year", "sex", "outcome", "fail_reason")
        ),
    ),
    OdmForm(
        "ENROLMENT",
        "Enrolment and exit",
        False,
        (
            ("enrolment", "cohort"),
            ("enrolment", "enrolled_on"),
            ("enrolment", "consented_on"),
            ("enrolment", "status"),
            ("withdrawal", "withdrawn_on"),
            ("withdrawal", "kind"),
            ("withdrawal", "reason"),
            ("end_of_study", "on"),
            ("end_of_study", "reason"),
        ),
    ),
    OdmForm("CONSENT", "Consent", True, (("consent", "version"), ("consent", "consented_on"))),
    OdmForm(
        "DOSING",
        "Dosing",
        False,
        tuple(("dosing", n) for n in ("dosed_at", "dose", "dose_unit", "lot_number")),
    ),
    OdmForm(
        "VISIT",
        "Visit",
        False,
        tuple(("visits", n) for n in ("scheduled_on", "status", "done_on", "result", "notes")),
    ),
    OdmForm(
        "AE",
        "Adverse event",
        True,
        tuple(
            ("adverse_events", n)
            for n in (
                "term",
                "pt_term",
                "pt_code",
                "soc",
                "onset_date",
                "resolution_date",
                "grade",
                "serious",
                "causality",
                "expected",
                "aesi",
                "aesi_category",
                "action_taken",
                "outcome",
                "narrative",
            )
        ),
    ),
    OdmForm(
        "AE_SERIOUSNESS",
        "Seriousness criteria",
        True,
        (("adverse_events", "seriousness_criterion"),),
    ),
    OdmForm(
        "LAB",
        "Laboratory result",
        True,
        tuple(
            ("labs", n)
            for n in (
                "analyte",
                "value",
                "unit",
                "uln",
                "lln",
                "collected_at",
                "value_canonical",
                "grade",
                "hys_law",
            )
        ),
    ),
    OdmForm(
        "EFFICACY",
        "Efficacy measurement",
        True,
        tuple(("efficacy", n) for n in ("endpoint", "value", "measured_on", "baseline", "visit")),
    ),
)
# The AE form holds two item groups: the event, and its seriousness criteria.
FORM_GROUPS = {"AE": ("AE", "AE_SERIOUSNESS"), "AE_SERIOUSNESS": ()}
EVENTS = (
    ("SE.SCREENING", "Screening and enrolment", "Scheduled", ("SCREENING", "ENROLMENT")),
    ("SE.DOSING", "Dosing", "Scheduled", ("DOSING",)),
    (
        "SE.COMMON",
        "Consents, adverse events, labs, efficacy",
        "Common",
        ("CONSENT", "AE", "LAB", "EFFICACY"),
    ),
)


def item_oid(domain: str, name: str) -> str:
    return f"IT.{domain.upper()}.{name.upper()}"


def group_oid(form: str) -> str:
    return f"IG.{form}"


def form_oid(form: str) -> str:
    return f"F.{form}"


def site_oid(code: str) -> str:
    return f"LOC.{code}"


def user_oid(actor_id: int | None) -> str:
    return SYSTEM_USER if actor_id is None else f"USR.{actor_id}"


def study_oid(trial: Trial) -> str:
    return "ST." + re.sub(r"[^A-Za-z0-9.\-_]", "_", trial.code)


MDV_OID = "MDV.1"


def _text(value: str) -> odm.TranslatedText:
    return odm.TranslatedText(_content=value, lang="en")


def visit_events(trial: Trial) -> list[tuple[str, int]]:
    """The visits of the trial, defined or scheduled (LTFU, RCR), by study day."""
    days: dict[str, int] = {v.name: v.day for v in trial.visit_definitions}
    scheduled = db.session.execute(
        sa.select(Visit.name, sa.func.min(Visit.day))
        .join(Subject, Subject.id == Visit.subject_id)
        .where(Subject.trial_id == trial.id)
        .group_by(Visit.name)
    )
    for name, day in scheduled:
        days.setdefault(name, day)
    return sorted(days.items(), key=lambda item: (item[1], item[0]))


def _variables(trial: Trial) -> dict[tuple[str, str], Variable]:
    found = {(v.domain, v.name): v for v in dictionary.variables(trial)}
    endpoints = db.session.execute(
        sa.select(EfficacyEndpoint.code, EfficacyEndpoint.name, EfficacyEndpoint.unit)
        .where(EfficacyEndpoint.trial_id == trial.id)
        .order_by(EfficacyEndpoint.code)
    )
    for (domain, name), (kind, label, codes) in _OWN.items():
        var = Variable(domain, name, label, kind, False)
        if codes:
            var.codelist = {c: c.replace("_", " ") for c in codes.split()}
        found[(domain, name)] = var
    found[("labs", "grade")].codelist = {str(g): CTCAE_GRADES[g] for g in range(5)}
    found[("efficacy", "endpoint")].codelist = {c: f"{n} ({u})" for c, n, u in endpoints}
    return found


def _item_def(oid: str, var: Variable, units: dict[str, str]) -> odm.ItemDef:
    kind = _ODM_TYPES.get(var.type.removeprefix("list of "), var.type)
    item = odm.ItemDef(OID=oid, Name=var.name, DataType=kind)
    if kind == "text":
        item.Length = var.max_length or 4000
    item.Description = odm.Description(TranslatedText=[_text(var.label)])
    for comparator, bound in (("GE", var.minimum), ("LE", var.maximum)):
        if bound is not None:
            item.RangeCheck.append(
                odm.RangeCheck(
                    Comparator=comparator,
                    SoftHard="Hard",
                    CheckValue=[odm.CheckValue(_content=str(bound))],
                )
            )
    if var.codelist:
        item.CodeListRef = odm.CodeListRef(CodeListOID=oid.replace("IT.", "CL.", 1))
    if (var.domain, var.name) in (("labs", "value_canonical"),):
        item.MeasurementUnitRef = [
            odm.MeasurementUnitRef(MeasurementUnitOID=u) for u in _distinct_units(units)
        ]
    return item


def _code_list(oid: str, var: Variable) -> odm.CodeList:
    kind = "integer" if all(c.lstrip("-").isdigit() for c in var.codelist) else "text"
    return odm.CodeList(
        OID=oid.replace("IT.", "CL.", 1),
        Name=f"{var.domain}.{var.name}",
        DataType=kind,
        CodeListItem=[
            odm.CodeListItem(CodedValue=code, Decode=odm.Decode(TranslatedText=[_text(label)]))
            for code, label in var.codelist.items()
        ],
    )


def unit_oids() -> dict[str, str]:
    """Canonical lab units (UCUM) by analyte, as MeasurementUnit OIDs."""
    return {a.code: f"MU.{re.sub(r'[^A-Za-z0-9]', '_', a.ucum)}" for a in ANALYTES.values()}


def _distinct_units(units: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for code, oid in units.items():
        found.setdefault(oid, ANALYTES[code])
    return found


def metadata(trial: Trial, created: datetime, with_audit: bool) -> odm.ODM:
    """The ODM root with Study and AdminData; ClinicalData is streamed after it."""
    variables = _variables(trial)
    units = unit_oids()
    visits = visit_events(trial)
    events: list[tuple[str, str, str, tuple[str, ...]]] = list(EVENTS)
    events += [
        (f"SE.VISIT.{n}", name, "Scheduled", ("VISIT",)) for n, (name, _) in enumerate(visits, 1)
    ]
    mdv = odm.MetaDataVersion(OID=MDV_OID, Name=f"{trial.code} as collected by trialmgr")
    mdv.Protocol = odm.Protocol(
        StudyEventRef=[
            odm.StudyEventRef(StudyEventOID=oid, OrderNumber=n, Mandatory="No")
            for n, (oid, *_) in enumerate(events, 1)
        ]
    )
    for oid, name, kind, forms in events:
        mdv.StudyEventDef.append(
            odm.StudyEventDef(
                OID=oid,
                Name=name,
                Repeating="No",
                Type=kind,
                FormRef=[odm.FormRef(FormOID=form_oid(f), Mandatory="No") for f in forms],
            )
        )
    item_defs: dict[str, odm.ItemDef] = {}
    code_lists: dict[str, odm.CodeList] = {}
    for form in FORMS:
        groups = FORM_GROUPS.get(form.key, (form.key,))
        if groups:
            mdv.FormDef.append(
                odm.FormDef(
                    OID=form_oid(form.key),
                    Name=form.name,
                    Repeating="No",
                    ItemGroupRef=[
                        odm.ItemGroupRef(ItemGroupOID=group_oid(g), Mandatory="No") for g in groups
                    ],
                )
            )
        group = odm.ItemGroupDef(
            OID=group_oid(form.key), Name=form.name, Repeating="Yes" if form.repeating else "No"
        )
        for n, key in enumerate(form.items, 1):
            oid = item_oid(*key)
            group.ItemRef.append(odm.ItemRef(ItemOID=oid, OrderNumber=n, Mandatory="No"))
            var = variables[key]
            item_defs.setdefault(oid, _item_def(oid, var, units))
            if var.codelist:
                code_lists.setdefault(oid, _code_list(oid, var))
        mdv.ItemGroupDef.append(group)
    mdv.ItemDef = list(item_defs.values())
    mdv.CodeList = list(code_lists.values())
    study = odm.Study(
        OID=study_oid(trial),
        GlobalVariables=odm.GlobalVariables(
            StudyName=odm.StudyName(_content=trial.code),
            StudyDescription=odm.StudyDescription(_content=trial.title),
            ProtocolName=odm.ProtocolName(_content=trial.code),
        ),
        BasicDefinitions=odm.BasicDefinitions(
            MeasurementUnit=[
                odm.MeasurementUnit(
                    OID=oid, Name=a.ucum, Symbol=odm.Symbol(TranslatedText=[_text(a.unit)])
                )
                for oid, a in _distinct_units(units).items()
            ]
        ),
        MetaDataVersion=[mdv],
    )
    root = odm.ODM(
        FileOID=f"trialmgr.{study_oid(trial)}.{created:%Y%m%dT%H%M%S%f}",
        FileType="Snapshot",
        Granularity="All",
        CreationDateTime=created.isoformat(),
        ODMVersion="1.3.2",
        Originator="trialmgr",
        SourceSystem="trialmgr",
        Study=[study],
        AdminData=[admin_data(trial, with_audit)],
    )
    return root


def admin_data(trial: Trial, with_audit: bool) -> odm.AdminData:
    """Sites as Locations; with the audit trail, the users it names (by id and name)."""
    sites = db.session.execute(
        sa.select(Site.code, Site.name)
        .where(Site.id.in_(sa.select(Subject.site_id).where(Subject.trial_id == trial.id)))
        .order_by(Site.code)
    )
    admin = odm.AdminData(StudyOID=study_oid(trial))
    for code, name in sites:
        admin.Location.append(
            odm.Location(
                OID=site_oid(code),
                Name=name,
                LocationType="Site",
                MetaDataVersionRef=[
                    odm.MetaDataVersionRef(
                        StudyOID=study_oid(trial),
                        MetaDataVersionOID=MDV_OID,
                        EffectiveDate="1900-01-01",
                    )
                ],
            )
        )
    if with_audit:
        admin.User.append(odm.User(OID=SYSTEM_USER, DisplayName=odm.DisplayName(_content="system")))
        users = db.session.execute(sa.select(User.id, User.name).order_by(User.id))
        for uid, name in users:
            admin.User.append(
                odm.User(OID=user_oid(uid), DisplayName=odm.DisplayName(_content=name))
            )
    return admin
