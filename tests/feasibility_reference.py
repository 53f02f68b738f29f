"""The feasibility review and the CONSORT flow computed record by record, as the service
computed them before its numbers were counted by the database (`milestones.services.
tallies`): the definitions of `metrics` applied to every loaded record, as of each date.
tests/test_feasibility_counts.py checks that both give the same numbers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from trialmgr.enrollment.models import Screening, Subject, Trial, Visit
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.milestones.models import METRICS
from trialmgr.milestones.services import criteria as criteria_service
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services import metrics
from trialmgr.milestones.services.feasibility import month_ends
from trialmgr.milestones.services.stats import Estimate, inverse_proportion, proportion, rate


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
    estimates = compute_all(data, day)
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
    estimates = compute_all(own, day)
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
        estimates: dict[str, Estimate] = compute_all(data, point)
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
    screens = screened(data, day)
    states = {s.id: metrics.screening_state(s) for s in screens}
    failed = [s for s in screens if states[s.id] == "failed"]
    declined = [s for s in screens if states[s.id] == "declined"]
    consented = [s for s in screens if consented_by(s, day)]
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
        done = visit is not None and done_by(visit, day)
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


# --- the metrics record by record (as `metrics` defines them) ---------------------------


def screened(data: ds.Dataset, as_of: date) -> list[Screening]:
    return [s for s in data.screenings if s.screened_on <= as_of]


def consented_by(screening: Screening, as_of: date) -> bool:
    return screening.consented_on is not None and screening.consented_on <= as_of


# --- visits as of a date ------------------------------------------------------------


def done_by(visit: Visit, as_of: date) -> bool:
    return visit.status == "done" and visit.done_on is not None and visit.done_on <= as_of


def due_by(visit: Visit, as_of: date) -> bool:
    """A visit is due once its window has closed (or once it is done); cancelled visits
    are not due."""
    if visit.status == "cancelled":
        return False
    return done_by(visit, as_of) or visit.window_end < as_of


def _filled(visit: Visit, field: str) -> bool:
    if field.startswith("answers."):
        return (visit.answers or {}).get(field.removeprefix("answers.")) is not None
    value = getattr(visit, field)
    return value is not None and (not isinstance(value, str) or value.strip() != "")


# --- the metrics -----------------------------------------------------------------------


def recruitment_rate(data: ds.Dataset, as_of: date) -> Estimate:
    months = sum(ds.site_months(data.trial, site, as_of) for site in ds.taking_part(data, as_of))
    return rate(len(metrics.enrolled(data, as_of)), round(months, 6))


def screen_to_enrol_ratio(data: ds.Dataset, as_of: date) -> Estimate:
    assessed = [s for s in screened(data, as_of) if metrics.screening_state(s) != "pending"]
    ids = {s.id for s in assessed}
    subjects = [s for s in metrics.enrolled(data, as_of) if s.screening_id in ids]
    return inverse_proportion(len(assessed), len(subjects))


def eligibility_rate(data: ds.Dataset, as_of: date) -> Estimate:
    states = [metrics.screening_state(s) for s in screened(data, as_of)]
    assessed = [s for s in states if s != "pending"]
    return proportion(sum(s in ("eligible", "declined") for s in assessed), len(assessed))


def consent_rate(data: ds.Dataset, as_of: date) -> Estimate:
    asked = [
        s
        for s in screened(data, as_of)
        if metrics.screening_state(s) in ("eligible", "declined") or consented_by(s, as_of)
    ]
    return proportion(sum(consented_by(s, as_of) for s in asked), len(asked))


def retention(data: ds.Dataset, as_of: date) -> Estimate:
    due = retained = 0
    for subject in metrics.enrolled(data, as_of):
        visit = ds.primary_visit(subject)
        if visit is None:
            continue
        left = visit.status == "cancelled" and visit.cancel_reason in metrics.EXIT_REASONS
        if done_by(visit, as_of):
            due, retained = due + 1, retained + 1
        elif (visit.status != "cancelled" or left) and visit.window_end < as_of:
            due += 1
    return proportion(retained, due)


def _due_visits(data: ds.Dataset, as_of: date) -> list[Visit]:
    return [v for s in data.subjects for v in s.visits if due_by(v, as_of)]


def visit_adherence(data: ds.Dataset, as_of: date) -> Estimate:
    due = _due_visits(data, as_of)
    in_window = [v for v in due if done_by(v, as_of) and v.in_window(v.done_on)]  # type: ignore[arg-type]
    return proportion(len(in_window), len(due))


def data_completeness(data: ds.Dataset, as_of: date) -> Estimate:
    required = filled = 0
    for visit in _due_visits(data, as_of):
        fields = metrics.REQUIRED_FIELDS.get(visit.kind, ("done_on",))
        required += len(fields)
        if done_by(visit, as_of):
            filled += sum(_filled(visit, f) for f in fields)
    return proportion(filled, required)


def sae_timeliness(data: ds.Dataset, as_of: date) -> Estimate:
    zones = {site.id: site.timezone for site in data.sites}
    due = on_time = 0
    for report in data.reports:
        cutoff = ds.end_of_day(as_of, zones.get(report.site_id))
        submitted = report.submitted_at is not None and report.submitted_at < cutoff
        if report.due_at < cutoff or submitted:
            due += 1
            if submitted and report.submitted_at <= report.due_at:  # type: ignore[operator]
                on_time += 1
    return proportion(on_time, due)


COMPUTE: dict[str, Callable[[ds.Dataset, date], Estimate]] = {
    "recruitment_rate": recruitment_rate,
    "screen_to_enrol_ratio": screen_to_enrol_ratio,
    "eligibility_rate": eligibility_rate,
    "consent_rate": consent_rate,
    "retention": retention,
    "visit_adherence": visit_adherence,
    "data_completeness": data_completeness,
    "sae_timeliness": sae_timeliness,
}
assert tuple(COMPUTE) == METRICS


def compute_all(data: ds.Dataset, as_of: date) -> dict[str, Estimate]:
    """Every metric of the load as of the date, in the contract's order."""
    return {metric: COMPUTE[metric](data, as_of) for metric in METRICS}
