"""The feasibility metrics (DOMAIN.md), computed from the records as of a date, each with
its numerator, denominator, value and exact 95 % interval.

As of a date: only what happened on or before it counts (screenings by `screened_on`,
enrolments by `enrolled_on`, dosing by its day at the site, visits by `done_on` and their
windows, expedited reports by their due and submission instants at the site, site-months
up to that day). Outcomes and field values are read as they stand now: the records keep no
date for an outcome or a note, so a screening screened before the date counts with its
present outcome.

Definitions (each a proportion whose numerator is a subset of its denominator, so that
the Clopper-Pearson interval applies):

- recruitment_rate: subjects enrolled ÷ site-months open for the trial (dataset.site_months);
  exact Poisson interval. Higher is better.
- screen_to_enrol_ratio: screened ÷ enrolled, "screened" being the screenings whose
  assessment is complete (outcome recorded); the interval is Clopper-Pearson for
  enrolled/screened, inverted. Lower is better.
- eligibility_rate: eligible ÷ screened. Eligible: outcome eligible, or declined with no
  unmet criterion (CONSORT: eligible, then declined).
- consent_rate: consented ÷ asked to consent, where the asked are the eligible and anyone
  who consented before eligibility was settled (ICH E6 4.8.8: a subject who consents and
  then fails screening counts as consented).
- retention: subjects with the primary-endpoint visit done ÷ subjects due it (its window
  closed, or done); subjects who left (withdrawn, lost, died) before it count as due and
  not retained.
- visit_adherence: visits done within their window ÷ visits due (window closed, or done);
  cancelled visits (after an exit, or by an amendment) are not due; missed ones are.
- data_completeness: required fields filled ÷ required fields of the due visits
  (REQUIRED_FIELDS, per visit kind).
- sae_timeliness: expedited reports submitted by their due time ÷ reports due (due by the
  date, or submitted by it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from trialmgr.enrollment.models import LTFU_QUESTIONS, Screening, Subject, Visit
from trialmgr.milestones.models import METRICS
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services.stats import Estimate, inverse_proportion, proportion, rate

LABELS = {
    "recruitment_rate": "Recruitment rate",
    "screen_to_enrol_ratio": "Screened per enrolled",
    "eligibility_rate": "Eligibility rate",
    "consent_rate": "Consent rate",
    "retention": "Retention to primary endpoint",
    "visit_adherence": "Visit adherence",
    "data_completeness": "Data completeness",
    "sae_timeliness": "SAE reporting timeliness",
}
UNITS = {
    "recruitment_rate": "subjects per site-month",
    "screen_to_enrol_ratio": "screened per enrolled",
}
KINDS = {
    "recruitment_rate": "rate",
    "screen_to_enrol_ratio": "ratio",
}
# The one metric where a smaller value is better: fewer screenings per enrolment.
LOWER_IS_BETTER = frozenset({"screen_to_enrol_ratio"})

# Required fields of a visit, per kind: the day it was done, and what the visit records
# (a protocol visit its clinical note, a long-term follow-up contact its answer to every
# delayed-event question, an RCR test its result).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "protocol": ("done_on", "notes"),
    "ltfu": ("done_on", *(f"answers.{q}" for q in LTFU_QUESTIONS)),
    "rcr": ("done_on", "result"),
}
# A primary-endpoint visit cancelled by one of these exits counts as not retained.
EXIT_REASONS = ("withdrawn", "lost_to_follow_up", "died")


def direction(metric: str) -> str:
    return "lower_is_better" if metric in LOWER_IS_BETTER else "higher_is_better"


# --- the screening log as of a date --------------------------------------------------


def screening_state(screening: Screening) -> str:
    """pending, failed, eligible, or declined (eligible, then said no). A refusal with an
    unmet criterion is a screen failure (the criterion is the reason that counts)."""
    if screening.outcome == "declined":
        return "failed" if screening.failed_criteria else "declined"
    return {"eligible": "eligible", "screen_failed": "failed"}.get(screening.outcome, "pending")


def screened(data: ds.Dataset, as_of: date) -> list[Screening]:
    return [s for s in data.screenings if s.screened_on <= as_of]


def consented(screening: Screening, as_of: date) -> bool:
    return screening.consented_on is not None and screening.consented_on <= as_of


def enrolled(data: ds.Dataset, as_of: date) -> list[Subject]:
    return [s for s in data.subjects if s.enrolled_on <= as_of]


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
    return rate(len(enrolled(data, as_of)), round(months, 6))


def screen_to_enrol_ratio(data: ds.Dataset, as_of: date) -> Estimate:
    assessed = [s for s in screened(data, as_of) if screening_state(s) != "pending"]
    ids = {s.id for s in assessed}
    subjects = [s for s in enrolled(data, as_of) if s.screening_id in ids]
    return inverse_proportion(len(assessed), len(subjects))


def eligibility_rate(data: ds.Dataset, as_of: date) -> Estimate:
    states = [screening_state(s) for s in screened(data, as_of)]
    assessed = [s for s in states if s != "pending"]
    return proportion(sum(s in ("eligible", "declined") for s in assessed), len(assessed))


def consent_rate(data: ds.Dataset, as_of: date) -> Estimate:
    asked = [
        s
        for s in screened(data, as_of)
        if screening_state(s) in ("eligible", "declined") or consented(s, as_of)
    ]
    return proportion(sum(consented(s, as_of) for s in asked), len(asked))


def retention(data: ds.Dataset, as_of: date) -> Estimate:
    due = retained = 0
    for subject in enrolled(data, as_of):
        visit = ds.primary_visit(subject)
        if visit is None:
            continue
        left = visit.status == "cancelled" and visit.cancel_reason in EXIT_REASONS
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
        fields = REQUIRED_FIELDS.get(visit.kind, ("done_on",))
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


def metric_view(metric: str, estimate: Estimate) -> dict[str, Any]:
    """A metric as the API and the pages show it."""
    return {
        "metric": metric,
        "label": LABELS[metric],
        "kind": KINDS.get(metric, "proportion"),
        "unit": UNITS.get(metric),
        "direction": direction(metric),
        **estimate.as_dict(),
    }
