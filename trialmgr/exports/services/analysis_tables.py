"""The analysis archive's tables: file, columns and where each column's meaning comes from
(a variable of the data dictionary, or its own label and type)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from trialmgr.enrollment.models import Trial
from trialmgr.exports.services import analysis_rows as rows
from trialmgr.exports.services.roster import SubjectInfo


@dataclass(frozen=True)
class Col:
    """One column: where its meaning comes from (a data-dictionary variable) or its own."""

    name: str
    source: tuple[str, str] | None = None
    label: str = ""
    type: str = ""
    unit: str = ""
    shifted: bool = False
    free_text: bool = False


_SUBJECT = Col("subject", label="Pseudonymous subject code", type="string")
_DAY = "integer (days from dosing, dosing day 0)"


def _day(name: str, of: str) -> Col:
    return Col(name, label=f"Study day of {of}", type=_DAY)


@dataclass(frozen=True)
class Table:
    file: str
    label: str
    columns: tuple[Col, ...]
    # each row: its values in the order of `columns`
    rows: Callable[[Trial, dict[int, SubjectInfo], dict[int, int]], Iterator[tuple[Any, ...]]]


TABLES = (
    Table(
        "subjects.csv",
        "One row per subject",
        (
            _SUBJECT,
            Col("site", label="Site code", type="string"),
            Col("cohort", source=("enrolment", "cohort_id"), label="Cohort label", type="string"),
            Col("status", label="Subject status", type="string"),
            Col("sex", source=("screening", "sex")),
            Col("birth_year", source=("screening", "birth_year")),
            Col("enrolled_on", source=("enrolment", "enrolled_on"), shifted=True),
            _day("enrolled_day", "enrolment"),
            Col("consented_on", source=("enrolment", "consented_on"), shifted=True),
            _day("consented_day", "first consent"),
            Col("dosed_on", label="Dosing day (site calendar)", type="date", shifted=True),
            Col("withdrawn_on", source=("withdrawal", "withdrawn_on"), shifted=True),
            _day("withdrawn_day", "withdrawal"),
            Col("withdrawal_kind", source=("withdrawal", "kind")),
            Col("withdrawal_reason", source=("withdrawal", "reason"), free_text=True),
            Col("ended_on", source=("end_of_study", "on"), shifted=True),
            _day("ended_day", "death or loss to follow-up"),
            Col("end_reason", source=("end_of_study", "reason"), free_text=True),
        ),
        rows.subjects,
    ),
    Table(
        "consents.csv",
        "One row per consent or re-consent",
        (
            _SUBJECT,
            Col("consent_version", label="Consent form version", type="string"),
            Col("consented_on", source=("consent", "consented_on"), shifted=True),
            _day("consented_day", "consent"),
        ),
        rows.consents,
    ),
    Table(
        "dosing.csv",
        "One row per dosing",
        (
            _SUBJECT,
            Col("cohort", source=("enrolment", "cohort_id"), label="Cohort label", type="string"),
            Col("dosed_at", source=("dosing", "dosed_at"), shifted=True),
            Col("dose", source=("dosing", "dose")),
            Col("dose_unit", source=("dosing", "dose_unit")),
        ),
        rows.dosing,
    ),
    Table(
        "visits.csv",
        "One row per scheduled visit",
        (
            _SUBJECT,
            Col("visit", label="Visit name", type="string"),
            Col("kind", label="protocol, ltfu (long-term follow-up) or rcr", type="string"),
            Col("planned_day", label="Planned study day", type=_DAY),
            Col("scheduled_on", label="Scheduled date", type="date", shifted=True),
            Col("window_start", label="Window opens", type="date", shifted=True),
            Col("window_end", label="Window closes", type="date", shifted=True),
            Col("status", label="scheduled, done, missed or cancelled", type="string"),
            Col("done_on", source=("visits", "done_on"), shifted=True),
            _day("done_day", "the visit"),
            Col("result", source=("visits", "result")),
            Col("cancel_reason", label="Why cancelled", type="string"),
            Col("primary_endpoint", label="Primary endpoint visit", type="boolean"),
            Col("notes", source=("visits", "notes"), free_text=True),
        ),
        rows.visits,
    ),
    Table(
        "adverse_events.csv",
        "One row per adverse event and seriousness criterion (one row if none)",
        (
            _SUBJECT,
            Col("event", label="Event number", type="integer"),
            Col("version", label="Version of the event (follow-up information)", type="integer"),
            Col("pt_term", source=("adverse_events", "pt_term")),
            Col("pt_code", source=("adverse_events", "pt_code")),
            Col("soc", source=("adverse_events", "soc")),
            Col("onset_date", source=("adverse_events", "onset_date"), shifted=True),
            _day("onset_day", "onset"),
            Col("resolution_date", source=("adverse_events", "resolution_date"), shifted=True),
            _day("resolution_day", "resolution"),
            Col("grade", source=("adverse_events", "grade")),
            Col("serious", label="Serious (ICH E2A)", type="boolean"),
            Col(
                "seriousness_criterion",
                source=("adverse_events", "seriousness_criteria"),
                type="string",
            ),
            Col("causality", source=("adverse_events", "causality")),
            Col("suspected", label="Causality possible or above", type="boolean"),
            Col("expected", source=("adverse_events", "expected")),
            Col("susar", label="Serious, unexpected, suspected", type="boolean"),
            Col("aesi", source=("adverse_events", "aesi")),
            Col("aesi_category", source=("adverse_events", "aesi_category")),
            Col("action_taken", source=("adverse_events", "action_taken")),
            Col("outcome", source=("adverse_events", "outcome")),
            Col("term", source=("adverse_events", "term"), free_text=True),
            Col("narrative", source=("adverse_events", "narrative"), free_text=True),
        ),
        rows.adverse_events,
    ),
    Table(
        "labs.csv",
        "One row per analyte and draw, in the canonical unit",
        (
            _SUBJECT,
            Col("analyte", source=("labs", "analyte")),
            Col("value", label="Value in the canonical unit", type="decimal"),
            Col("unit", label="Canonical unit", type="string"),
            Col("uln_multiple", label="Value / ULN", type="decimal"),
            Col("grade", label="CTCAE v5.0 grade (0 normal)", type="integer"),
            Col("collected_at", source=("labs", "collected_at"), shifted=True),
            _day("collected_day", "the draw"),
            Col("hys_law", label="Hy's law screen positive", type="boolean"),
        ),
        rows.labs,
    ),
    Table(
        "efficacy.csv",
        "One row per efficacy measurement",
        (
            _SUBJECT,
            Col("endpoint", source=("efficacy", "endpoint_id"), label="Endpoint code"),
            Col("value", source=("efficacy", "value")),
            Col("unit", label="Endpoint unit", type="string"),
            Col("measured_on", source=("efficacy", "measured_on"), shifted=True),
            _day("measured_day", "the measurement"),
            Col("baseline", source=("efficacy", "baseline")),
            Col("visit", label="Visit name", type="string"),
        ),
        rows.efficacy,
    ),
)
