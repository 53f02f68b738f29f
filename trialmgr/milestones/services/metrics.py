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

from datetime import date
from typing import Any

from trialmgr.enrollment.models import LTFU_QUESTIONS, Screening, Subject
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services.stats import Estimate

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


def enrolled(data: ds.Dataset, as_of: date) -> list[Subject]:
    return [s for s in data.subjects if s.enrolled_on <= as_of]


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
