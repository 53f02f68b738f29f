"""Efficacy measurements: entered by the coordinators of the subject's site (clinical data,
audited, corrections need a reason), dated on the site's calendar: not in the future, not
before consent, not after the subject left protocol procedures; a baseline is measured on
or before the dosing day.

Change from baseline: the subject's baseline for an endpoint is the latest measurement
flagged as baseline on or before the dosing day (study day 0; all flagged ones count while
the subject is not dosed yet). Without one, no change is given and the output says why;
with a baseline of 0 the percent change is undefined and said so too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from trialmgr.audit import services as audit
from trialmgr.clock import Day, Phrase, check_not_future, local_date
from trialmgr.efficacy.models import EfficacyMeasurement
from trialmgr.efficacy.services.endpoints import get_endpoint
from trialmgr.enrollment.models import Dosing, Subject, Visit
from trialmgr.enrollment.policies import require_site_worker
from trialmgr.enrollment.services.subjects import exit_date, get_subject
from trialmgr.errors import Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import site_local_date, site_today

NO_BASELINE = "No baseline recorded for this subject and endpoint."
ZERO_BASELINE = "The baseline is 0: percent change is undefined."


def dosed_on(subject: Subject) -> date | None:
    """The dosing day on the site's calendar (study day 0), if dosed."""
    if subject.dosing is None:
        return None
    return site_local_date(subject.site, subject.dosing.dosed_at)


def _check(m: EfficacyMeasurement, subject: Subject, now: datetime) -> None:
    """The date happened at the site after consent and before any exit; a baseline is
    pre-dose; the visit is the subject's own and was not cancelled."""
    errors: dict[str, list[str | Phrase]] = {}
    try:
        check_not_future("measured_on", m.measured_on, site_today(subject.site, now))
    except Invalid as exc:
        errors.update(exc.field_messages)
    if m.measured_on < subject.consented_on:
        errors["measured_on"] = [
            Phrase("Before the subject's consent ({on}).", on=Day(subject.consented_on))
        ]
    exit_on = exit_date(subject, "protocol")
    if exit_on is not None and m.measured_on > exit_on:
        errors["measured_on"] = [
            Phrase("After the subject left protocol procedures ({on}).", on=Day(exit_on))
        ]
    day0 = dosed_on(subject)
    if m.baseline and day0 is not None and m.measured_on > day0:
        errors["baseline"] = [
            Phrase("A baseline is measured on or before the dosing day ({on}).", on=Day(day0))
        ]
    if m.visit_id is not None:
        visit = db.session.get(Visit, m.visit_id)
        if visit is None or visit.subject_id != subject.id:
            errors["visit_id"] = [f"No visit {m.visit_id} of subject {subject.code}."]
        elif visit.status == "cancelled":
            errors["visit_id"] = [f"The {visit.name} visit was cancelled."]
    if errors:
        raise Invalid("The measurement does not add up.", errors=errors)


def record(actor: Any, data: dict[str, Any], now: datetime) -> EfficacyMeasurement:
    """Record a measurement for a subject of the actor's sites (coordinators only)."""
    subject = get_subject(actor, data["subject_code"])
    require_site_worker(actor, subject.site_id)
    endpoint = get_endpoint(subject.trial_id, data["endpoint_id"])
    m = EfficacyMeasurement(
        trial_id=subject.trial_id,
        subject=subject,
        site_id=subject.site_id,
        cohort_id=subject.cohort_id,
        endpoint=endpoint,
        visit_id=data.get("visit_id"),
        value=data["value"],
        measured_on=data["measured_on"],
        baseline=data.get("baseline", False),
    )
    _check(m, subject, now)
    with audit.audited(actor, action="efficacy_measurement.record"):
        db.session.add(m)
    return m


EDITABLE = ("value", "measured_on", "baseline", "visit_id")


def update(
    actor: Any, m: EfficacyMeasurement, data: dict[str, Any], now: datetime
) -> EfficacyMeasurement:
    """Correct a measurement (value, date, baseline flag, visit): the reason is kept in the
    audit trail with the old and new values; the rules of a new entry apply again."""
    require_site_worker(actor, m.site_id)
    changed = {k: data[k] for k in EDITABLE if k in data and getattr(m, k) != data[k]}
    if not changed:
        raise Invalid("Nothing changed.", errors={"_schema": ["Give the corrected values."]})
    with audit.audited(actor, reason=data["reason"], action="efficacy_measurement.update"):
        for key, value in changed.items():
            setattr(m, key, value)
        _check(m, m.subject, now)
    return m


def get(actor: Any, measurement_id: int) -> EfficacyMeasurement:
    m = db.session.get(EfficacyMeasurement, measurement_id)
    if m is None or not may_see_site(actor, m.site_id):
        raise NotFound(f"No efficacy measurement {measurement_id}.")
    return m


def query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[EfficacyMeasurement]]:
    """Measurements in the actor's sites, by subject and date; filters by subject, trial,
    endpoint, site, cohort."""
    q = scope_sites(actor, sa.select(EfficacyMeasurement), EfficacyMeasurement.site_id)
    for field in ("trial_id", "endpoint_id", "site_id", "cohort_id"):
        if filters.get(field) is not None:
            q = q.where(getattr(EfficacyMeasurement, field) == filters[field])
    if filters.get("subject_code"):
        q = q.join(Subject, Subject.id == EfficacyMeasurement.subject_id).where(
            Subject.code == filters["subject_code"].strip().upper()
        )
    # what `annotate` reads, loaded in a few queries rather than several per row
    q = q.options(
        selectinload(EfficacyMeasurement.subject),
        selectinload(EfficacyMeasurement.endpoint),
        selectinload(EfficacyMeasurement.visit),
    )
    return q.order_by(
        EfficacyMeasurement.subject_id,
        EfficacyMeasurement.endpoint_id,
        EfficacyMeasurement.measured_on,
        EfficacyMeasurement.id,
    )


# --- change from baseline ---------------------------------------------------------------


def choose_baseline(
    candidates: Iterable[EfficacyMeasurement], day0: date | None
) -> tuple[EfficacyMeasurement | None, str | None]:
    """The baseline that counts among a subject's flagged measurements of one endpoint: the
    latest on or before the dosing day `day0` (any, while not dosed). None with the reason
    when there is none."""
    flagged = list(candidates)
    if not flagged:
        return None, NO_BASELINE
    eligible = [c for c in flagged if day0 is None or c.measured_on <= day0]
    if not eligible:
        first = min(c.measured_on for c in flagged)
        return None, f"No pre-dose baseline: the baseline of {first} is after the dosing on {day0}."
    return max(eligible, key=lambda c: (c.measured_on, c.id)), None


def dosing_days(subject_ids: Iterable[int]) -> dict[int, date]:
    """Dosing day on each site's calendar, for the dosed among these subjects."""
    ids = list(set(subject_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Dosing.subject_id, Dosing.dosed_at, Site.timezone)
        .join(Subject, Subject.id == Dosing.subject_id)
        .join(Site, Site.id == Subject.site_id)
        .where(Dosing.subject_id.in_(ids))
    )
    return {r.subject_id: local_date(r.dosed_at, r.timezone) for r in rows}


def _flagged(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], list[EfficacyMeasurement]]:
    found: dict[tuple[int, int], list[EfficacyMeasurement]] = {p: [] for p in pairs}
    if not pairs:
        return found
    rows = db.session.execute(
        sa.select(EfficacyMeasurement).where(
            EfficacyMeasurement.baseline.is_(True),
            EfficacyMeasurement.subject_id.in_({s for s, _ in pairs}),
            EfficacyMeasurement.endpoint_id.in_({e for _, e in pairs}),
        )
    ).scalars()
    for m in rows:
        if (m.subject_id, m.endpoint_id) in found:
            found[(m.subject_id, m.endpoint_id)].append(m)
    return found


def change(value: Decimal, base: EfficacyMeasurement | None, note: str | None) -> dict[str, Any]:
    """Change and percent change of `value` from the baseline, or the reason there is none."""
    if base is None:
        return {"change": None, "percent": None, "note": note}
    diff = value - base.value
    if base.value == 0:
        return {"change": float(diff), "percent": None, "note": ZERO_BASELINE}
    return {
        "change": float(diff),
        "percent": round(float(diff / base.value * 100), 2),
        "note": None,
    }


def annotate(measurements: list[EfficacyMeasurement]) -> list[dict[str, Any]]:
    """Each measurement as the API and pages show it: with its study day, the baseline that
    counts for its subject and endpoint, and the change from it (or why there is none)."""
    pairs = {(m.subject_id, m.endpoint_id) for m in measurements}
    flagged = _flagged(pairs)
    days = dosing_days(s for s, _ in pairs)
    chosen = {p: choose_baseline(flagged[p], days.get(p[0])) for p in pairs}
    views = []
    for m in measurements:
        base, note = chosen[(m.subject_id, m.endpoint_id)]
        day0 = days.get(m.subject_id)
        delta = change(m.value, base, note)
        views.append(
            {
                "id": m.id,
                "subject_code": m.subject.code,
                "trial_id": m.trial_id,
                "site_id": m.site_id,
                "cohort_id": m.cohort_id,
                "endpoint_id": m.endpoint_id,
                "endpoint_code": m.endpoint.code,
                "unit": m.endpoint.unit,
                "visit_id": m.visit_id,
                "visit": m.visit.name if m.visit else None,
                "value": float(m.value),
                "measured_on": m.measured_on,
                "study_day": (m.measured_on - day0).days if day0 is not None else None,
                "baseline": m.baseline,
                "baseline_used": base is not None and base.id == m.id,
                "baseline_value": float(base.value) if base else None,
                "baseline_on": base.measured_on if base else None,
                "change_from_baseline": delta["change"],
                "percent_change_from_baseline": delta["percent"],
                "change_note": delta["note"],
            }
        )
    return views
