"""Safety signals per cohort: the incidence of each system organ class and AESI category
(and of any event, grade 3 or more, serious, suspected related, SUSAR, any AESI) among the
cohort's dosed subjects, with an exact (Clopper-Pearson) 95 % interval, and the time from
dosing to the first such event; the cohort-over-cohort comparison the escalation review
reads is the same table over the whole trial.

Numerator: dosed subjects with at least one such event (whenever it began: an event
before dosing gives a negative onset day); denominator: the cohort's dosed subjects in the
reader's sites. The onset day is the first event's onset minus the dosing day on the site's
calendar (day 0). The first onsets are computed per subject in SQL; only one row per
subject and SOC (or category) reaches Python, for the site-local dosing day.
"""

from __future__ import annotations

import functools
import statistics
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa

from trialmgr.clock import local_date
from trialmgr.enrollment.models import Dosing, Subject, Trial
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.safety.services.scope import Scope, ae_conditions, dosed_by_cut_off, scope_for

# (key, label, the condition an event meets (of the events counted), the listing's filter)
MEASURES: tuple[tuple[str, str, Callable[[Any], Any], dict[str, Any]], ...] = (
    ("any", "Any adverse event", lambda ae: sa.true(), {}),
    ("grade3", "Grade 3 or more", lambda ae: ae.grade >= 3, {"min_grade": 3}),
    ("serious", "Serious", lambda ae: ae.serious.is_(True), {"serious": "true"}),
    (
        "related",
        "Suspected related (possible or above)",
        lambda ae: ae.suspected.is_(True),
        {"suspected": "true"},
    ),
    ("susar", "SUSAR", lambda ae: ae.susar.is_(True), {"susar": "true"}),
    ("aesi", "Any AESI", lambda ae: ae.aesi.is_(True), {"aesi": "true"}),
)


@functools.lru_cache(maxsize=4096)
def exact_interval(k: int, n: int) -> tuple[float, float]:
    """Clopper-Pearson 95 % interval of k of n (n > 0)."""
    from scipy.stats import binomtest  # loaded when a signal is computed, not with the app

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def incidence(k: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"subjects": k, "dosed": 0, "percent": None, "ci_low": None, "ci_high": None}
    low, high = exact_interval(k, n)
    return {
        "subjects": k,
        "dosed": n,
        "percent": round(100 * k / n, 1),
        "ci_low": round(100 * low, 1),
        "ci_high": round(100 * high, 1),
    }


def _dosed(scope: Scope) -> dict[int, tuple[int, date]]:
    """subject id -> (cohort id, dosing day on the site's calendar), in the scope."""
    q = (
        sa.select(Subject.id, Subject.cohort_id, Dosing.dosed_at, Site.timezone)
        .join(Dosing, Dosing.subject_id == Subject.id)
        .join(Site, Site.id == Subject.site_id)
        .where(Subject.trial_id == scope.trial.id, *dosed_by_cut_off(scope))
    )
    if scope.site_ids is not None:
        q = q.where(Subject.site_id.in_(scope.site_ids))
    if scope.cohort_id is not None:
        q = q.where(Subject.cohort_id == scope.cohort_id)
    return {r.id: (r.cohort_id, local_date(r.dosed_at, r.timezone)) for r in db.session.execute(q)}


def _first_onsets(scope: Scope, detail: bool) -> dict[tuple[str, str], dict[int, date]]:
    """(group, key) -> subject id -> first onset, for every subject with events (the dosed
    are picked in Python: a per-event EXISTS would cost more than the rows it saves): per
    measure, and with `detail` per SOC and per AESI category. Grouped by site, subject (and
    SOC as spelt) in the order of the dashboard index; spellings are merged here."""
    ae = scope.events
    where = ae_conditions(scope)
    firsts: dict[tuple[str, str], dict[int, date]] = defaultdict(dict)
    group = [ae.site_id, ae.subject_id]
    per_subject = db.session.execute(
        sa.select(
            ae.subject_id,
            *(
                sa.func.min(sa.case((condition(ae), ae.onset_date)))
                for _, _, condition, _ in MEASURES
            ),
        )
        .where(*where)
        .group_by(*group)
    ).all()
    for i, (key, *_) in enumerate(MEASURES, start=1):
        firsts[("measure", key)] = {row[0]: row[i] for row in per_subject if row[i] is not None}
    if not detail:
        return firsts
    per_soc = db.session.execute(
        sa.select(ae.subject_id, ae.soc, sa.func.min(ae.onset_date))
        .where(*where)
        .group_by(*group, ae.soc)
    ).all()
    spelling: dict[str, str] = {}  # one per SOC (capitalised spellings sort first)
    by_key: dict[str, dict[int, date]] = defaultdict(dict)
    for subject_id, soc, first in per_soc:
        key = soc.strip(" ").lower()
        spelling[key] = min(spelling.get(key, soc), soc)
        held = by_key[key].get(subject_id)
        if held is None or first < held:
            by_key[key][subject_id] = first
    for key, subjects in by_key.items():
        firsts[("soc", spelling[key].strip())] = subjects
    per_category = db.session.execute(
        sa.select(
            ae.subject_id,
            ae.aesi_category,
            sa.func.min(ae.onset_date),
        )
        .where(*where, ae.aesi.is_(True))
        .group_by(ae.subject_id, ae.aesi_category)
    ).all()
    for subject_id, category, first in per_category:
        firsts[("aesi", category or "unspecified")][subject_id] = first
    return firsts


def _cells(
    subjects: dict[int, date],
    dosed: dict[int, tuple[int, date]],
    counts: dict[int, int],
    cohorts: list[Any],
) -> list[dict[str, Any]]:
    """One cell per cohort: its dosed subjects with a first onset, and their onset days."""
    days: dict[int, list[int]] = defaultdict(list)
    for subject_id, first in subjects.items():
        held = dosed.get(subject_id)
        if held is not None:
            days[held[0]].append((first - held[1]).days)
    cells = []
    for cohort in cohorts:
        mine = days.get(cohort.id, [])
        cells.append(
            {
                "cohort_id": cohort.id,
                **incidence(len(mine), counts[cohort.id]),
                "onset_median": statistics.median(mine) if mine else None,
                "onset_min": min(mine) if mine else None,
                "onset_max": max(mine) if mine else None,
            }
        )
    return cells


def signals(actor: Any, trial: Trial, filters: dict[str, Any]) -> dict[str, Any]:
    """{cohorts: [{id, label, dose, dose_unit, dosed}], rows: [{group, key, label, listing,
    cells: [{cohort_id, subjects, dosed, percent, ci_low, ci_high, onset_median, onset_min,
    onset_max}]}]}: groups "measure" (overall), "soc", "aesi" (by category)."""
    scope = scope_for(actor, trial, filters)
    return _table(scope, detail=True)


def _table(scope: Scope, detail: bool) -> dict[str, Any]:
    dosed = _dosed(scope)
    counts: dict[int, int] = defaultdict(int)
    for cohort_id, _ in dosed.values():
        counts[cohort_id] += 1
    cohorts = [c for c in scope.trial.cohorts if scope.cohort_id is None or c.id == scope.cohort_id]
    firsts = _first_onsets(scope, detail)
    rows = []
    for key, label, _, listing in MEASURES:  # always, zeros included
        subjects = firsts.get(("measure", key), {})
        cells = _cells(subjects, dosed, counts, cohorts)
        rows.append(
            {"group": "measure", "key": key, "label": label, "listing": listing, "cells": cells}
        )
    others = sorted(
        (item for item in firsts.items() if item[0][0] != "measure"),
        key=lambda item: (item[0][0] != "soc", item[0][1].casefold()),
    )
    for (group, key), subjects in others:  # only what a dosed subject had
        cells = _cells(subjects, dosed, counts, cohorts)
        if not any(cell["subjects"] for cell in cells):
            continue
        listing = {"soc": key} if group == "soc" else {"aesi_category": key}
        rows.append(
            {
                "group": group,
                "key": key,
                "label": key.replace("_", " "),
                "listing": listing,
                "cells": cells,
            }
        )
    return {
        "cohorts": [
            {
                "id": c.id,
                "label": c.label,
                "dose": c.dose,
                "dose_unit": c.dose_unit,
                "dosed": counts[c.id],
            }
            for c in cohorts
        ],
        "rows": rows,
    }


def cohort_comparison(actor: Any, trial: Trial, detail: bool = False) -> dict[str, Any]:
    """The escalation review's table: every cohort side by side over the whole trial (the
    reader's sites): any event, grade 3 or more, serious, related, SUSAR, AESI; with
    `detail`, each SOC and AESI category too."""
    return _table(scope_for(actor, trial, {}), detail)
