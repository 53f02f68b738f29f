"""Lab results: converted to the canonical unit, graded by CTCAE v5.0 (safety/grading.py),
screened for Hy's law per draw (ALT or AST > 3x ULN with bilirubin > 2x ULN in the same
sample), a grade 3 or more opening a task to record or link an adverse event, and the
stopping rules run in the same transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Phrase
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.policies import require_site_worker
from trialmgr.enrollment.services.subjects import get_subject
from trialmgr.errors import Invalid
from trialmgr.extensions import db
from trialmgr.partners.policies import scope_sites
from trialmgr.partners.services.sites import site_local_date, site_today
from trialmgr.safety import grading
from trialmgr.safety.models import LabResult
from trialmgr.safety.services import stopping, work

HEPATIC_AESI = ("ALT", "AST", "BILI")
LAB_AE_GRADE = 3


def _graded(data: dict[str, Any]) -> dict[str, Any]:
    """Grade, canonical value and ULN multiple; unit and limit problems are field errors."""
    analyte, value, unit = data["analyte"], data["value"], data["unit"]
    uln, lln = data.get("uln"), data.get("lln")
    # Reports give both limits; only the analytes graded on ULN multiples have a multiple.
    on_multiples = analyte in grading.ANALYTES and (
        grading.ANALYTES[analyte].direction == grading.INCREASED
    )
    try:
        result: dict[str, Any] = {
            "grade": grading.grade(analyte, value, unit, uln=uln, lln=lln),
            "value_canonical": grading.to_canonical(analyte, value, unit),
            "canonical_unit": grading.ANALYTES[analyte].unit,
            "uln_multiple": (
                grading.uln_multiple(analyte, value, unit, uln) if uln and on_multiples else None
            ),
        }
    except grading.UnitError as exc:
        raise Invalid("Unknown unit for this analyte.", errors={"unit": [str(exc)]}) from exc
    except grading.MissingLimitError as exc:
        field = "uln" if grading.ANALYTES[analyte].direction == grading.INCREASED else "lln"
        raise Invalid("A reference limit is needed.", errors={field: [str(exc)]}) from exc
    except grading.GradingError as exc:
        raise Invalid("The value cannot be graded.", errors={"value": [str(exc)]}) from exc
    result["label"] = grading.describe(analyte, result["grade"]) if result["grade"] else None
    return result


def preview(data: dict[str, Any]) -> dict[str, Any]:
    """What a value would be graded (the lab form shows it as it is typed)."""
    result = _graded(data)
    return {
        "grade": result["grade"],
        "label": result["label"],
        "value_canonical": float(result["value_canonical"]),
        "canonical_unit": result["canonical_unit"],
        "uln_multiple": None if result["uln_multiple"] is None else float(result["uln_multiple"]),
    }


def _hys_law_completed(lab: LabResult) -> bool:
    """Whether this result completes a Hy's law pattern in its draw (not flagged before)."""
    if lab.analyte not in HEPATIC_AESI:
        return False
    draw = list(
        db.session.execute(
            sa.select(LabResult).where(
                LabResult.subject_id == lab.subject_id,
                LabResult.collected_at == lab.collected_at,
                LabResult.analyte.in_(HEPATIC_AESI),
            )
        ).scalars()
    )
    if any(other.hys_law for other in draw if other is not lab):
        return False
    multiple = {other.analyte: other.uln_multiple for other in draw}
    return grading.hys_law(multiple.get("ALT"), multiple.get("AST"), multiple.get("BILI"))


def record(actor: Any, data: dict[str, Any], now: datetime) -> LabResult:
    """Record one analyte of one draw for a subject of the actor's sites."""
    subject = get_subject(actor, data["subject_code"])
    require_site_worker(actor, subject.site_id)
    if data["analyte"] in HEPATIC_AESI:  # may complete a Hy's law case: rules at the end
        lock_rows(db.session, Trial, subject.trial_id)
    collected = data["collected_at"]
    if collected > now:
        raise Invalid(
            "Samples cannot be taken in the future.", errors={"collected_at": ["Future."]}
        )
    if site_local_date(subject.site, collected) < subject.consented_on:
        raise Invalid(
            "Sample before consent.",
            errors={
                "collected_at": [Phrase("Before consent ({on}).", on=Day(subject.consented_on))]
            },
        )
    graded = _graded(data)
    with audit.audited(actor, action="lab.record"):
        lab = LabResult(
            trial_id=subject.trial_id,
            subject=subject,
            site_id=subject.site_id,
            analyte=data["analyte"],
            value=data["value"],
            unit=data["unit"],
            uln=data.get("uln"),
            lln=data.get("lln"),
            value_canonical=graded["value_canonical"],
            canonical_unit=graded["canonical_unit"],
            uln_multiple=graded["uln_multiple"],
            grade=graded["grade"],
            collected_at=collected,
        )
        db.session.add(lab)
        db.session.flush()
        lab.hys_law = _hys_law_completed(lab)
        if lab.grade >= LAB_AE_GRADE or lab.hys_law:
            _ae_task(subject, lab, graded["label"], now)
    trial = db.session.get(Trial, subject.trial_id)
    assert trial is not None
    if lab.hys_law:  # of lab results, the rules look at Hy's law cases only
        stopping.evaluate(trial, now)
    return lab


def _ae_task(subject: Subject, lab: LabResult, label: str | None, now: datetime) -> None:
    onset = site_local_date(subject.site, lab.collected_at)
    title = (
        f"Hy's law case at the {onset} draw: record the adverse event ({subject.code})"
        if lab.hys_law
        else f"{label} on {onset}: record or link the adverse event ({subject.code})"
    )
    prefill: dict[str, Any] = {
        "term": grading.ANALYTES[lab.analyte].label,
        "soc": "Investigations",
        "grade": lab.grade or 3,
        "onset_date": onset.isoformat(),
        "lab_result_id": lab.id,
    }
    if lab.analyte in HEPATIC_AESI:
        prefill.update({"aesi": True, "aesi_category": "hepatotoxicity"})
    work.record_ae_task(
        subject,
        title,
        prefill,
        site_today(subject.site, now) + timedelta(days=1),
        lab_result_id=lab.id,
    )


def query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[LabResult]]:
    q = scope_sites(actor, sa.select(LabResult), LabResult.site_id)
    if filters.get("subject_code"):
        q = q.join(Subject, Subject.id == LabResult.subject_id).where(
            Subject.code == filters["subject_code"].strip().upper()
        )
    for field in ("trial_id", "analyte"):
        if filters.get(field) is not None:
            q = q.where(getattr(LabResult, field) == filters[field])
    if filters.get("min_grade") is not None:
        q = q.where(LabResult.grade >= filters["min_grade"])
    return q.order_by(LabResult.collected_at.desc(), LabResult.id.desc())
