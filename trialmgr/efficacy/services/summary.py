"""The per-cohort efficacy summary over time: for one endpoint, per cohort and timepoint
(the baseline, then each visit by study day), the number of subjects and the mean, median,
minimum and maximum of the value and of the change from baseline.

Each subject counts once per timepoint: at a visit, their latest measurement there; at
baseline, the baseline that counts for them. Unscheduled measurements (no visit) other
than the baseline are listed per subject but not summarised.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from trialmgr.efficacy.models import EfficacyEndpoint
from trialmgr.efficacy.services import measurements
from trialmgr.efficacy.services.endpoints import default_endpoint, get_endpoint
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.services.trials import get_cohort
from trialmgr.errors import Invalid
from trialmgr.extensions import db

BASELINE = "Baseline"


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "min": None, "max": None}
    return {
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "min": min(values),
        "max": max(values),
    }


def summary(
    actor: Any, trial: Trial, endpoint: EfficacyEndpoint, filters: dict[str, Any]
) -> list[dict[str, Any]]:
    """Rows {cohort, cohort_id, visit, day, n, mean, median, min, max, n_change, mean_change,
    median_change}, by cohort sequence then study day (baseline first), over the subjects of
    the actor's sites (and the site or cohort filtered on)."""
    if filters.get("cohort_id") is not None:
        get_cohort(trial, filters["cohort_id"])  # another trial's cohort is a field error
    scope = {"trial_id": trial.id, "endpoint_id": endpoint.id}
    scope.update({k: filters[k] for k in ("site_id", "cohort_id") if filters.get(k) is not None})
    rows = list(db.session.execute(measurements.query(actor, scope)).scalars())
    views = measurements.annotate(rows)
    # (cohort, (day, visit)) -> subject -> the view that counts there
    cells: dict[tuple[int, tuple[int, str]], dict[int, dict[str, Any]]] = defaultdict(dict)
    for m, view in zip(rows, views, strict=True):
        if view["baseline_used"]:
            key = (-(10**6), BASELINE)
        elif m.visit is not None:
            key = (m.visit.day, m.visit.name)
        else:
            continue
        held = cells[(m.cohort_id, key)].get(m.subject_id)
        if held is None or (held["measured_on"], held["id"]) < (view["measured_on"], view["id"]):
            cells[(m.cohort_id, key)][m.subject_id] = view
    cohorts = {c.id: c for c in trial.cohorts}
    out = []
    for (cohort_id, (day, visit)), by_subject in sorted(
        cells.items(), key=lambda item: (cohorts[item[0][0]].sequence, item[0][1])
    ):
        chosen = list(by_subject.values())
        values = [v["value"] for v in chosen]
        changes = [
            v["change_from_baseline"] for v in chosen if v["change_from_baseline"] is not None
        ]
        change_stats = _stats(changes)
        out.append(
            {
                "cohort": cohorts[cohort_id].label,
                "cohort_id": cohort_id,
                "visit": visit,
                "day": None if visit == BASELINE else day,
                "n": len(values),
                **_stats(values),
                "n_change": len(changes),
                "mean_change": change_stats["mean"],
                "median_change": change_stats["median"],
            }
        )
    return out


def endpoint_for(trial: Trial, endpoint_id: int | None) -> EfficacyEndpoint:
    """The endpoint asked for, or the trial's default (its first primary endpoint)."""
    if endpoint_id is not None:
        return get_endpoint(trial.id, endpoint_id)
    endpoint = default_endpoint(trial.id)
    if endpoint is None:
        raise Invalid(
            "The trial has no efficacy endpoint.",
            errors={"endpoint_id": ["Define an endpoint first."]},
        )
    return endpoint
