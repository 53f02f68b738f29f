"""The safety dashboard's lab numbers, computed in the database: graded lab shifts (per
analyte and cohort, each dosed subject's baseline grade, from the last draw before the
dosing instant, none without one, against the worst grade after it) and ALT in multiples of
the ULN over study days for the subjects with the highest peaks.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased, joinedload

from trialmgr.clock import local_date
from trialmgr.enrollment.models import Dosing, Subject
from trialmgr.extensions import db
from trialmgr.safety.models import LabResult
from trialmgr.safety.services.scope import Scope, cohorts_of, dosed_by_cut_off, lab_conditions

# The ALT chart draws the subjects with the highest peaks.
ALT_SUBJECTS = 20


def _per_subject_labs(scope: Scope) -> Any:
    """Per dosed subject and analyte: cohort, the last draw before dosing, the worst grade
    after it (one row each, for shifts and their drill-down). Grouped by site, subject and
    analyte: the order of `ix_lab_result_dashboard`, read without the table or a sort, and
    a coordinator's sites are ranges of it (a subject has one site and one cohort)."""
    pre = LabResult.collected_at < Dosing.dosed_at
    per = (
        sa.select(
            LabResult.subject_id,
            sa.func.max(Subject.cohort_id).label("cohort_id"),
            LabResult.analyte,
            sa.func.max(sa.case((pre, LabResult.collected_at))).label("baseline_at"),
            sa.func.max(sa.case((sa.not_(pre), LabResult.grade))).label("worst"),
        )
        .join(Subject, Subject.id == LabResult.subject_id)
        .join(Dosing, Dosing.subject_id == LabResult.subject_id)
        .where(*lab_conditions(scope), *dosed_by_cut_off(scope))
        .group_by(LabResult.site_id, LabResult.subject_id, LabResult.analyte)
        .subquery()
    )
    baseline = aliased(LabResult)
    baseline_grade = (
        sa.select(sa.func.max(baseline.grade))
        .where(
            baseline.subject_id == per.c.subject_id,
            baseline.analyte == per.c.analyte,
            baseline.collected_at == per.c.baseline_at,
        )
        .scalar_subquery()
    )
    return sa.select(
        per.c.subject_id,
        per.c.cohort_id,
        per.c.analyte,
        baseline_grade.label("baseline_grade"),
        per.c.worst,
    ).where(per.c.worst.is_not(None))


def lab_shifts(scope: Scope) -> list[dict[str, Any]]:
    """[{analyte, cohort, cohort_id, baseline_grade, worst_grade, subjects}]; baseline_grade
    None: no draw before dosing."""
    per = _per_subject_labs(scope).subquery()
    rows = db.session.execute(
        sa.select(
            per.c.analyte, per.c.cohort_id, per.c.baseline_grade, per.c.worst, sa.func.count()
        ).group_by(per.c.analyte, per.c.cohort_id, per.c.baseline_grade, per.c.worst)
    ).all()
    cohorts = cohorts_of(scope.trial)
    out = [
        {
            "analyte": analyte,
            "cohort": cohorts[c].label,
            "cohort_id": c,
            "baseline_grade": None if b is None else int(b),
            "worst_grade": int(w),
            "subjects": int(n),
        }
        for analyte, c, b, w, n in rows
    ]
    return sorted(
        out,
        key=lambda r: (
            r["analyte"],
            cohorts[r["cohort_id"]].sequence,
            -1 if r["baseline_grade"] is None else r["baseline_grade"],
            r["worst_grade"],
        ),
    )


def shift_subjects(scope: Scope, analyte: str, baseline_grade: int | None, worst: int) -> Any:
    """The subject ids in one cell of the shift table (a subquery)."""
    per = _per_subject_labs(scope).subquery()
    baseline = (
        per.c.baseline_grade.is_(None)
        if baseline_grade is None
        else per.c.baseline_grade == baseline_grade
    )
    return sa.select(per.c.subject_id).where(
        per.c.analyte == analyte, per.c.worst == worst, baseline
    )


def alt_series(scope: Scope, limit: int = ALT_SUBJECTS) -> list[dict[str, Any]]:
    """ALT in multiples of the ULN over study days, for the dosed subjects with the highest
    peaks: [{subject_code, cohort, peak, points: [{day, uln_multiple, grade}]}]."""
    has_multiple = [*lab_conditions(scope), LabResult.analyte == "ALT"]
    has_multiple.append(LabResult.uln_multiple.is_not(None))
    peak = sa.func.max(LabResult.uln_multiple)
    top = db.session.execute(
        sa.select(LabResult.subject_id, peak)
        .join(Subject, Subject.id == LabResult.subject_id)
        .join(Dosing, Dosing.subject_id == LabResult.subject_id)
        .where(*has_multiple, *dosed_by_cut_off(scope))
        .group_by(LabResult.site_id, LabResult.subject_id)  # ix_lab_result_dashboard's order
        .order_by(peak.desc(), LabResult.subject_id)
        .limit(limit)
    ).all()
    if not top:
        return []
    ids = [subject_id for subject_id, _ in top]
    subjects = {
        s.id: s
        for s in db.session.execute(
            sa.select(Subject)
            .where(Subject.id.in_(ids))
            .options(joinedload(Subject.site), joinedload(Subject.dosing))
        ).scalars()
    }
    points: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    draws = db.session.execute(
        sa.select(
            LabResult.subject_id, LabResult.collected_at, LabResult.uln_multiple, LabResult.grade
        )
        .join(Subject, Subject.id == LabResult.subject_id)
        .where(*has_multiple, LabResult.subject_id.in_(ids))
        .order_by(LabResult.subject_id, LabResult.collected_at)
    ).all()
    for subject_id, collected_at, multiple, grade in draws:
        subject = subjects[subject_id]
        assert subject.dosing is not None
        zone_name = subject.site.timezone
        day = local_date(collected_at, zone_name) - local_date(subject.dosing.dosed_at, zone_name)
        points[subject_id].append(
            {"day": day.days, "uln_multiple": round(float(multiple), 2), "grade": grade}
        )
    cohorts = cohorts_of(scope.trial)
    return [
        {
            "subject_code": subjects[i].code,
            "cohort": cohorts[subjects[i].cohort_id].label,
            "peak": round(float(p), 2),
            "points": points[i],
        }
        for i, p in top
    ]
