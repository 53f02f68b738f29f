"""The data dictionary: every collected variable with its type, whether it is required, its
rules, unit and code list, read from the marshmallow in-schemas the API and the pages load
(the one validation layer), so it cannot drift from what the service accepts. The trial adds
its own code lists: visits, efficacy endpoints with their units, cohort dose units."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from marshmallow import Schema, fields, validate

from trialmgr.efficacy.models import EfficacyEndpoint
from trialmgr.efficacy.schemas import MeasurementIn
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.schemas import (
    ConsentIn,
    DosingIn,
    EndIn,
    EnrolIn,
    ScreeningIn,
    VisitPatch,
    WithdrawalIn,
)
from trialmgr.extensions import db
from trialmgr.safety.grading import ANALYTES
from trialmgr.safety.schemas import AdverseEventIn, LabIn

# CTCAE v5.0 general grade names (the code list of every `grade`).
CTCAE_GRADES = {
    0: "Normal",
    1: "Mild",
    2: "Moderate",
    3: "Severe",
    4: "Life-threatening",
    5: "Death",
}


@dataclass(frozen=True)
class Form:
    """One collected domain: its in-schema and the fields that are plumbing, not data."""

    domain: str
    label: str
    schema: type[Schema]
    plumbing: tuple[str, ...] = ()


FORMS = (
    Form("screening", "Screening", ScreeningIn, ("trial_id", "site_id", "answers")),
    Form("enrolment", "Enrolment", EnrolIn, ("screening_id",)),
    Form("consent", "Consent and re-consent", ConsentIn),
    Form("dosing", "Dosing", DosingIn, ("confirm_dose_deviation",)),
    Form("visits", "Visits", VisitPatch, ("reason",)),
    Form("withdrawal", "Withdrawal", WithdrawalIn),
    Form("end_of_study", "Death or loss to follow-up", EndIn),
    Form(
        "adverse_events",
        "Adverse events",
        AdverseEventIn,
        ("task_id", "lab_result_id", "source_visit_id"),
    ),
    Form("labs", "Laboratory results", LabIn),
    Form("efficacy", "Efficacy measurements", MeasurementIn),
)

# Text typed by people: may name someone or something identifying. The analysis export
# drops these unless asked for them and confirmed.
FREE_TEXT = frozenset(
    {
        ("screening", "fail_reason"),
        ("visits", "notes"),
        ("withdrawal", "reason"),
        ("end_of_study", "reason"),
        ("adverse_events", "term"),
        ("adverse_events", "narrative"),
    }
)

_TYPES: tuple[tuple[type[fields.Field], str], ...] = (
    (fields.AwareDateTime, "datetime"),
    (fields.DateTime, "datetime"),
    (fields.Date, "date"),
    (fields.Decimal, "decimal"),
    (fields.Integer, "integer"),
    (fields.Float, "float"),
    (fields.Boolean, "boolean"),
    (fields.String, "string"),
    (fields.Dict, "object"),
)


@dataclass
class Variable:
    domain: str
    name: str
    label: str
    type: str
    required: bool
    rules: list[str] = field(default_factory=list)
    minimum: Any = None
    maximum: Any = None
    max_length: int | None = None
    unit: str | None = None
    codelist: dict[str, str] = field(default_factory=dict)
    free_text: bool = False

    def as_dict(self) -> dict[str, Any]:
        """As the API gives it: the code list a list of {code, label}, in its order."""
        out = asdict(self)
        out["codelist"] = [{"code": k, "label": v} for k, v in self.codelist.items()]
        return out


def _type_of(f: fields.Field) -> str:
    if isinstance(f, fields.List) and f.inner is not None:
        return f"list of {_type_of(f.inner)}"
    return next((name for cls, name in _TYPES if isinstance(f, cls)), "string")


def _validators(f: fields.Field) -> list[Any]:
    found = list(f.validators)
    if isinstance(f, fields.List) and f.inner is not None:
        found += list(f.inner.validators)
    return found


def _describe(domain: str, name: str, f: fields.Field) -> Variable:
    description = (f.metadata or {}).get("description")
    var = Variable(
        domain=domain,
        name=name,
        label=description or name.replace("_", " ").capitalize(),
        type=_type_of(f),
        required=bool(f.required),
        free_text=(domain, name) in FREE_TEXT,
    )
    for v in _validators(f):
        if isinstance(v, validate.Range):
            var.minimum, var.maximum = v.min, v.max
            var.rules.append(_range_rule(v))
        elif isinstance(v, validate.Length):
            var.max_length = v.max
            var.rules.append(f"length {v.min or 0}-{v.max}" if v.max else f"length >= {v.min}")
        elif isinstance(v, validate.OneOf):
            var.codelist = {str(c): str(c).replace("_", " ") for c in v.choices}
        elif isinstance(v, validate.Regexp):
            var.rules.append(f"matches {v.regex.pattern!s}")
        elif callable(v) and hasattr(v, "__name__"):
            # a schema's own check function: its name says the rule (`_positive_number`)
            var.rules.append(v.__name__.strip("_").replace("_", " "))
    if name == "grade":
        top = int(var.maximum) if var.maximum is not None else 5
        low = int(var.minimum) if var.minimum is not None else 0
        var.codelist = {str(g): CTCAE_GRADES[g] for g in range(low, top + 1)}
    if isinstance(f, fields.AwareDateTime):
        var.rules.append("with a time zone; stored in UTC")
    return var


def _range_rule(v: validate.Range) -> str:
    low = "" if v.min is None else f"{v.min} {'<=' if v.min_inclusive else '<'} "
    high = "" if v.max is None else f" {'<=' if v.max_inclusive else '<'} {v.max}"
    return f"{low}value{high}"


def _trial_details(trial: Trial, var: Variable) -> None:
    """Units and code lists that are the trial's own (or the grading tables')."""
    key = (var.domain, var.name)
    if key == ("labs", "analyte"):
        var.codelist = {a.code: a.label for a in ANALYTES.values()}
    elif key == ("labs", "unit"):
        var.codelist = {
            u: ", ".join(a.code for a in ANALYTES.values() if u in a.units)
            for u in dict.fromkeys(u for a in ANALYTES.values() for u in a.units)
        }
    elif key in (("labs", "value"), ("labs", "uln"), ("labs", "lln")):
        var.unit = "; ".join(f"{a.code} {a.unit}" for a in ANALYTES.values())
        var.rules.append("in the unit given; converted to the canonical unit shown")
    elif key == ("efficacy", "endpoint_id") or key == ("efficacy", "value"):
        endpoints = db.session.execute(
            db.select(EfficacyEndpoint)
            .where(EfficacyEndpoint.trial_id == trial.id)
            .order_by(EfficacyEndpoint.code)
        ).scalars()
        if var.name == "endpoint_id":
            var.codelist = {str(e.id): f"{e.code}: {e.name} ({e.unit})" for e in endpoints}
        else:
            var.unit = "; ".join(f"{e.code} {e.unit}" for e in endpoints) or None
    elif key in (("dosing", "dose"), ("dosing", "dose_unit")):
        units = sorted({c.dose_unit for c in trial.cohorts})
        var.unit = ", ".join(units) or None
    elif key in (("enrolment", "cohort_id"),):
        var.codelist = {str(c.id): f"{c.label}: {c.dose} {c.dose_unit}" for c in trial.cohorts}
    elif key == ("enrolment", "consent_version_id") or key == ("consent", "consent_version_id"):
        var.codelist = {str(v.id): f"version {v.version}" for v in trial.consent_versions}
    elif key == ("visits", "answers"):
        var.codelist = {}


def variables(trial: Trial) -> Iterator[Variable]:
    """Every collected variable of the trial, form by form, in the schemas' field order."""
    for form in FORMS:
        schema = form.schema()
        for name, f in schema.fields.items():
            if name in form.plumbing or (f.load_only and name == "password"):
                continue
            var = _describe(form.domain, f.data_key or name, f)
            _trial_details(trial, var)
            yield var


def visit_codelist(trial: Trial) -> dict[str, str]:
    return {v.name: f"study day {v.day}" for v in trial.visit_definitions if v.active}


def dictionary(trial: Trial) -> dict[str, Any]:
    """The dictionary as the API gives it: forms with their variables."""
    return {
        "trial": trial.code,
        "forms": [{"domain": f.domain, "label": f.label} for f in FORMS],
        "visits": visit_codelist(trial),
        "variables": [v.as_dict() for v in variables(trial)],
    }


CSV_HEADER = [
    "domain",
    "name",
    "label",
    "type",
    "required",
    "rules",
    "minimum",
    "maximum",
    "max_length",
    "unit",
    "codelist",
    "free_text",
]


def csv_rows(trial: Trial) -> Iterator[list[Any]]:
    for v in variables(trial):
        yield [
            v.domain,
            v.name,
            v.label,
            v.type,
            "yes" if v.required else "no",
            "; ".join(v.rules),
            v.minimum,
            v.maximum,
            v.max_length,
            v.unit,
            "; ".join(f"{k}={label}" for k, label in v.codelist.items()),
            "yes" if v.free_text else "no",
        ]
