"""The feasibility review and the CONSORT flow computed record by record, as the service
computed them before its numbers were counted by the database (`milestones.services.
tallies`): the definitions of `metrics` applied to every loaded record, as of each date.
tests/test_feasibility_counts.py checks that both give the same numbers."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.milestones.models import METRICS
from trialmgr.milestones.services import criteria as criteria_service
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services import metrics
from trialmgr.milestones.services.feasibility import month_ends
from trialmgr.milestones.services.stats import Estimate


def review(
    actor: Any,
    trial: Trial,
    now: datetime,
    as_of: date | None = None,
    site_id: int | None = None,
    trend: bool = True,
    entered_by: date | None = None,
) -> dict[str, Any]:
    """The trial's feasibility as of a date (default: the reader's today), over the sites
    the reader sees (coordinators: their own), or one of them (`site_id`; another site's is
    404). Only records dated on or before `as_of` count, so a past review is reproduced; a
    report passes its cut-off as `entered_by` too (records entered after it are left out)."""
    day = ds.resolve_as_of(actor, now, as_of)
    data = ds.load(actor, trial, site_id, entered_by)
    estimates = metrics.compute_all(data, day)
    criteria = criteria_service.criteria_of(trial)
    judged = [criteria_service.criterion_view(c, estimates[c.metric]) for c in criteria]
    return {
        "trial_id": trial.id,
        "trial_code": trial.code,
        "as_of": day,
        "site_id": site_id,
        "metrics": [metrics.metric_view(m, estimates[m]) for m in METRICS],
        "criteria": judged,
        "decision": criteria_service.decision([c["light"] for c in judged]),
        "sites": [_site_row(data, site, day, criteria) for site in ds.taking_part(data, day)],
        "trend": _trend(data, day) if trend else [],
    }


def _site_row(data: ds.Dataset, site: Any, day: date, criteria: list[Any]) -> dict[str, Any]:
    """One site: its enrolment against its target, its months open, its metrics and lights."""
    own = data.for_site(site)
    estimates = metrics.compute_all(own, day)
    enrolled = len(metrics.enrolled(own, day))
    target = site.target_enrollment or 0
    return {
        "site_id": site.id,
        "site_code": site.code,
        "site_name": site.name,
        "country": site.country,
        "target_enrollment": target,
        "enrolled": enrolled,
        "percent_of_target": round(100 * enrolled / target, 1) if target else None,
        "months_open": round(ds.site_months(data.trial, site, day), 2),
        "metrics": [metrics.metric_view(m, estimates[m]) for m in METRICS],
        "lights": {
            c.metric: criteria_service.light(
                c.metric, estimates[c.metric], c.target, c.amber_fraction
            )
            for c in criteria
        },
    }


def _trend(data: ds.Dataset, day: date) -> list[dict[str, Any]]:
    """Each metric's value at the end of every month since the first screening (or the
    first day a site could recruit), and as of the review date."""
    starts = [s.screened_on for s in data.screenings]
    starts += [d for site in data.sites if (d := ds.first_open_day(data.trial, site, day))]
    if not starts or min(starts) > day:
        return []
    points = []
    for point in month_ends(min(starts), day):
        estimates: dict[str, Estimate] = metrics.compute_all(data, point)
        points.append(
            {
                "as_of": point,
                "values": {m: estimates[m].value for m in METRICS},
                "numerators": {m: estimates[m].numerator for m in METRICS},
                "denominators": {m: estimates[m].denominator for m in METRICS},
            }
        )
    return points


EXITS = ("withdrawn", "lost", "died")


def exit_as_of(subject: Subject, day: date) -> tuple[str, date] | None:
    """How and when the subject had left by `day` (death over loss over withdrawal)."""
    if subject.status == "died" and subject.ended_on and subject.ended_on <= day:
        return "died", subject.ended_on
    if subject.status == "lost_to_follow_up" and subject.ended_on and subject.ended_on <= day:
        return "lost", subject.ended_on
    if subject.withdrawn_on is not None and subject.withdrawn_on <= day:
        return "withdrawn", subject.withdrawn_on
    return None


def _reasons(counter: Counter[str], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    labels = labels or {}
    return [
        {"reason": reason, "label": labels.get(reason, reason), "count": count}
        for reason, count in sorted(counter.items(), key=lambda rc: (-rc[1], rc[0]))
    ]


def _stated(text: str | None) -> str:
    return " ".join((text or "").split()) or "not stated"


def _screening_steps(data: ds.Dataset, day: date) -> dict[str, Any]:
    screens = metrics.screened(data, day)
    states = {s.id: metrics.screening_state(s) for s in screens}
    failed = [s for s in screens if states[s.id] == "failed"]
    declined = [s for s in screens if states[s.id] == "declined"]
    consented = [s for s in screens if metrics.consented(s, day)]
    enrolled_screenings = {s.screening_id for s in metrics.enrolled(data, day)}
    failed_reasons: Counter[str] = Counter()
    for screening in failed:
        failed_reasons.update(screening.failed_criteria or [_stated(screening.fail_reason)])
    criteria = {c.code: f"{c.code}: {c.text}" for c in data.trial.criteria}
    return {
        "approached": len(screens),
        "in_screening": sum(state == "pending" for state in states.values()),
        "screened": sum(state != "pending" for state in states.values()),
        "screen_failed": len(failed),
        "screen_failed_reasons": _reasons(failed_reasons, criteria),
        "eligible": sum(state in ("eligible", "declined") for state in states.values()),
        "declined": len(declined),
        "declined_reasons": _reasons(Counter(_stated(s.fail_reason) for s in declined)),
        "consented": len(consented),
        "consented_then_screen_failed": sum(states[s.id] == "failed" for s in consented),
        "eligible_not_enrolled": sum(
            states[s.id] == "eligible" and s.id not in enrolled_screenings for s in screens
        ),
    }


def _subject_steps(data: ds.Dataset, day: date) -> dict[str, Any]:
    subjects = metrics.enrolled(data, day)
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    withdrawals: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    dosed = completed = in_follow_up = awaiting = 0
    for subject in subjects:
        dosed_on = ds.dosed_on(subject)
        is_dosed = dosed_on is not None and dosed_on <= day
        visit = ds.primary_visit(subject)
        done = visit is not None and metrics.done_by(visit, day)
        left = exit_as_of(subject, day)
        if left is not None:
            totals[left[0]] += 1
            if left[0] == "withdrawn":
                withdrawals[
                    (subject.withdrawal_kind or "full", _stated(subject.withdrawal_reason))
                ] += 1
        if not is_dosed:
            if left is not None:
                before[left[0]] += 1
            else:
                awaiting += 1
            continue
        dosed += 1
        if done:
            completed += 1
        elif left is not None:
            after[left[0]] += 1
        else:
            in_follow_up += 1
    return {
        "enrolled": len(subjects),
        "left_before_dosing": {kind: before[kind] for kind in EXITS},
        "awaiting_dosing": awaiting,
        "dosed": dosed,
        "left_after_dosing": {kind: after[kind] for kind in EXITS},
        "in_follow_up": in_follow_up,
        "completed": completed,
        "withdrawn": totals["withdrawn"],
        "withdrawn_reasons": [
            {"kind": kind, "reason": reason, "count": count}
            for (kind, reason), count in sorted(withdrawals.items(), key=lambda kc: (-kc[1], kc[0]))
        ],
        "lost": totals["lost"],
        "died": totals["died"],
    }


SCREENING_STEPS = (
    "approached",
    "in_screening",
    "screened",
    "screen_failed",
    "screen_failed_reasons",
    "eligible",
    "declined",
    "declined_reasons",
    "consented",
    "consented_then_screen_failed",
    "eligible_not_enrolled",
)


def flow(
    actor: Any,
    trial: Trial,
    now: datetime,
    as_of: date | None = None,
    site_id: int | None = None,
    cohort_id: int | None = None,
    entered_by: date | None = None,
) -> dict[str, Any]:
    """The flow as of a date (default: the reader's today) over the sites the reader sees
    (coordinators: their own), one site (`site_id`; another's is 404) or one cohort; a
    report passes its cut-off as `entered_by` too (records entered after it are left out)."""
    day = ds.resolve_as_of(actor, now, as_of)
    data = ds.load(actor, trial, site_id, entered_by)
    cohort = None
    if cohort_id is not None:
        cohort = trials_service.get_cohort(trial, cohort_id)
        data = data.for_cohort(cohort.id)
    steps: dict[str, Any] = (
        dict.fromkeys(SCREENING_STEPS) if cohort is not None else _screening_steps(data, day)
    )
    return {
        "trial_id": trial.id,
        "trial_code": trial.code,
        "as_of": day,
        "site_id": site_id,
        "cohort_id": cohort_id,
        "cohort_label": cohort.label if cohort else None,
        **steps,
        **_subject_steps(data, day),
    }
