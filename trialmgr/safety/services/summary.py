"""The safety dashboard's numbers (what the DSMB looks at), computed in the database.

Every aggregate is a GROUP BY in SQL over the trial's records in the reader's scope (their
sites; optionally one site, one cohort, an onset-date range); no adverse-event row is
loaded into Python for a count. Listings behind each number are in `listings`, lab shifts
and the ALT chart in `lab_summary`, the per-cohort incidences in `signals`.

- **AEs by SOC x worst grade x cohort**: each subject is counted once per system organ
  class and cohort, at the worst grade of their events in that SOC; `events` counts all of
  those subjects' events in the SOC, so that each event is in exactly one row. SOCs are
  compared without case or surrounding spaces (as the stopping rules compare them).
- **Open SAEs**: serious events without a resolution date (a fatal event's is the date of
  death). **Overdue reports**: clocks not submitted whose due time has passed.
- **Lab shifts** and the ALT chart: see `lab_summary`.
- Date range: adverse events by onset date (and clocks by their event's), lab draws by
  collection time (UTC days).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.enrollment.models import Subject, Trial
from trialmgr.enrollment.services.oversight import open_pause
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.services import sites as sites_service
from trialmgr.safety.models import (
    ExpeditedReport,
    StoppingRuleFiring,
)
from trialmgr.safety.services import clocks, lab_summary, signals, stopping
from trialmgr.safety.services.scope import (
    Scope,
    ae_conditions,
    cohorts_of,
    scope_for,
    site_arg,
    soc_key,
)

# How many rows a dashboard section lists before "see all" (the listings have every row).
SECTION_ROWS = 50


# --- the numbers ----------------------------------------------------------------------


def headline(scope: Scope, now: datetime) -> dict[str, Any]:
    """Events and subjects with events, serious and open serious events, SUSARs, open and
    overdue clocks, the pause. (Deaths and AESIs come with their own tables.)"""
    ae = scope.events
    where = ae_conditions(scope)
    per_subject = (
        sa.select(ae.site_id, ae.subject_id, sa.func.count().label("n"))
        .where(*where)
        .group_by(ae.site_id, ae.subject_id)  # the dashboard index's order
        .subquery()
    )
    subjects, events = db.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(per_subject.c.n), 0))
    ).one()
    saes, open_saes = db.session.execute(
        sa.select(sa.func.count(), _sum(ae.resolution_date.is_(None))).where(
            *where, ae.serious.is_(True)
        )
    ).one()
    susars = db.session.execute(
        sa.select(sa.func.count()).where(*where, ae.susar.is_(True))
    ).scalar_one()
    open_reports, overdue = db.session.execute(
        sa.select(sa.func.count(), _sum(ExpeditedReport.due_at < now))
        .select_from(ExpeditedReport)
        .join(ae, ae.id == ExpeditedReport.adverse_event_id)
        .where(ExpeditedReport.submitted_at.is_(None), *where)
    ).one()
    trial = scope.trial
    pause = open_pause(trial)
    return {
        "events": int(events),
        "subjects_with_events": int(subjects),
        "open_saes": int(open_saes),
        "saes": int(saes),
        "susars": int(susars),
        "open_reports": int(open_reports),
        "overdue_reports": int(overdue),
        "paused": trial.status == "paused",
        "paused_reason": trial.paused_reason if trial.status == "paused" else None,
        "paused_at": pause.paused_at if pause else None,
    }


def _sum(condition: Any) -> Any:
    """How many rows meet the condition (0 for none)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def by_soc_grade_cohort(scope: Scope) -> list[dict[str, Any]]:
    """[{soc, worst_grade, cohort, cohort_id, subjects, events}] by SOC, cohort, grade.

    First per subject and SOC as spelt, grouped by site too: the order of the dashboard
    index, so the database streams it without sorting and a coordinator's sites are ranges
    of it; then the counts. When two spellings of one SOC are in the scope (case, spaces),
    a subject with both must count once: the SOCs are then compared normalised per subject
    in a middle step (slower: it groups every subject's SOCs again)."""
    ae = scope.events
    spelt = (
        sa.select(
            ae.site_id,
            ae.subject_id,
            ae.soc,
            sa.func.max(ae.cohort_id).label("cohort_id"),  # the subject's one cohort
            sa.func.max(ae.grade).label("worst"),
            sa.func.count().label("events"),
        )
        .where(*ae_conditions(scope))
        .group_by(ae.site_id, ae.subject_id, ae.soc)
        .subquery()
    )
    rows = _soc_counts(spelt, spelt.c.soc)
    keys = {label: label.strip(" ").lower() for _, label, *_ in rows}
    if len(set(keys.values())) < len(keys):
        per_subject = (
            sa.select(
                spelt.c.cohort_id,
                spelt.c.subject_id,
                sa.func.min(spelt.c.soc).label("soc"),
                sa.func.max(spelt.c.worst).label("worst"),
                sa.func.sum(spelt.c.events).label("events"),
            )
            .group_by(spelt.c.cohort_id, spelt.c.subject_id, soc_key(spelt.c.soc))
            .subquery()
        )
        rows = _soc_counts(per_subject, soc_key(per_subject.c.soc))
    # one spelling per SOC (capitalised spellings sort first), whatever each subject's was
    spelling: dict[str, str] = {}
    for _, label, *_ in rows:
        key = label.strip(" ").lower()
        spelling[key] = min(spelling.get(key, label), label)
    cohorts = cohorts_of(scope.trial)
    out = [
        {
            "soc": spelling[label.strip(" ").lower()].strip(),
            "worst_grade": int(worst),
            "cohort": cohorts[cohort_id].label,
            "cohort_id": cohort_id,
            "subjects": int(subjects),
            "events": int(events),
        }
        for _, label, worst, cohort_id, subjects, events in rows
    ]
    return sorted(
        out,
        key=lambda r: (r["soc"].casefold(), cohorts[r["cohort_id"]].sequence, r["worst_grade"]),
    )


def by_term_grade_cohort(scope: Scope) -> list[dict[str, Any]]:
    """[{soc, term, worst_grade, cohort, cohort_id, subjects, events}]: as the SOC table, one
    level down: each subject counted once per preferred term (the verbatim term where no
    MedDRA term was coded) and cohort, at the worst grade of their events with that term.
    Terms and SOCs are compared without case or surrounding spaces."""
    ae = scope.events
    term = sa.func.coalesce(ae.pt_term, ae.term)
    per_subject = (
        sa.select(
            ae.subject_id,
            soc_key(ae.soc).label("soc_key"),
            soc_key(term).label("term_key"),
            sa.func.min(ae.soc).label("soc"),
            sa.func.min(term).label("term"),
            sa.func.max(ae.cohort_id).label("cohort_id"),
            sa.func.max(ae.grade).label("worst"),
            sa.func.count().label("events"),
        )
        .where(*ae_conditions(scope))
        .group_by(ae.subject_id, soc_key(ae.soc), soc_key(term))
        .subquery()
    )
    rows = db.session.execute(
        sa.select(
            per_subject.c.soc_key,
            per_subject.c.term_key,
            sa.func.min(per_subject.c.soc),
            sa.func.min(per_subject.c.term),
            per_subject.c.worst,
            per_subject.c.cohort_id,
            sa.func.count(),
            sa.func.sum(per_subject.c.events),
        ).group_by(
            per_subject.c.soc_key,
            per_subject.c.term_key,
            per_subject.c.worst,
            per_subject.c.cohort_id,
        )
    ).all()
    spelling: dict[tuple[str, str], tuple[str, str]] = {}
    for soc_k, term_k, soc, term_, *_ in rows:
        held = spelling.get((soc_k, term_k), (soc, term_))
        spelling[(soc_k, term_k)] = (min(held[0], soc), min(held[1], term_))
    cohorts = cohorts_of(scope.trial)
    out = [
        {
            "soc": spelling[(soc_k, term_k)][0].strip(),
            "term": spelling[(soc_k, term_k)][1].strip(),
            "worst_grade": int(worst),
            "cohort": cohorts[cohort_id].label,
            "cohort_id": cohort_id,
            "subjects": int(subjects),
            "events": int(events),
        }
        for soc_k, term_k, _, _, worst, cohort_id, subjects, events in rows
    ]
    return sorted(
        out,
        key=lambda r: (
            r["soc"].casefold(),
            r["term"].casefold(),
            cohorts[r["cohort_id"]].sequence,
            r["worst_grade"],
        ),
    )


def _soc_counts(per_subject: Any, key: Any) -> list[Any]:
    """(key, a spelling, worst grade, cohort, subjects, events) from per-subject rows."""
    return list(
        db.session.execute(
            sa.select(
                key,
                sa.func.min(per_subject.c.soc),
                per_subject.c.worst,
                per_subject.c.cohort_id,
                sa.func.count(),
                sa.func.sum(per_subject.c.events),
            ).group_by(key, per_subject.c.worst, per_subject.c.cohort_id)
        ).all()
    )


def by_grade_cohort(scope: Scope) -> list[dict[str, Any]]:
    """[{cohort, cohort_id, grade, events}]: the grade chart's numbers (grouped by site
    first: SQLite then reads the dashboard index rather than the table)."""
    ae = scope.events
    per_site = (
        sa.select(
            ae.site_id,
            ae.cohort_id,
            ae.grade,
            sa.func.count().label("events"),
        )
        .where(*ae_conditions(scope))
        .group_by(ae.site_id, ae.cohort_id, ae.grade)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(per_site.c.cohort_id, per_site.c.grade, sa.func.sum(per_site.c.events)).group_by(
            per_site.c.cohort_id, per_site.c.grade
        )
    ).all()
    cohorts = cohorts_of(scope.trial)
    out = [
        {"cohort": cohorts[c].label, "cohort_id": c, "grade": int(g), "events": int(n)}
        for c, g, n in rows
    ]
    return sorted(out, key=lambda r: (cohorts[r["cohort_id"]].sequence, r["grade"]))


def aesi_by_category(scope: Scope) -> list[dict[str, Any]]:
    """[{category, cohort, cohort_id, subjects, events, worst_grade}] of AESIs."""
    ae = scope.events
    rows = db.session.execute(
        sa.select(
            ae.aesi_category,
            ae.cohort_id,
            sa.func.count(sa.distinct(ae.subject_id)),
            sa.func.count(),
            sa.func.max(ae.grade),
        )
        .where(*ae_conditions(scope), ae.aesi.is_(True))
        .group_by(ae.aesi_category, ae.cohort_id)
    ).all()
    cohorts = cohorts_of(scope.trial)
    out = [
        {
            "category": category,
            "cohort": cohorts[c].label,
            "cohort_id": c,
            "subjects": int(s),
            "events": int(n),
            "worst_grade": int(w),
        }
        for category, c, s, n, w in rows
    ]
    return sorted(out, key=lambda r: (r["category"] or "", cohorts[r["cohort_id"]].sequence))


def recent_aesis(scope: Scope, limit: int = SECTION_ROWS) -> list[dict[str, Any]]:
    """The newest AESIs (by onset), for the dashboard's AESI list. The ids come first from
    the AESI index alone (a planner could otherwise walk every event by
    onset date looking for the few AESIs of a coordinator's sites); the rows are read as
    columns with their subject's and site's codes in one statement (no ORM objects: the
    list is shown, not changed)."""
    ae = scope.events
    newest = (
        sa.select(ae.id)
        .where(*ae_conditions(scope), ae.aesi.is_(True))
        .order_by(ae.onset_date.desc(), ae.id.desc())
        .limit(limit)
    )
    rows = db.session.execute(
        sa.select(
            ae.id,
            Subject.code.label("subject_code"),
            Site.code.label("site"),
            ae.cohort_id,
            ae.term,
            ae.soc,
            ae.grade,
            ae.onset_date,
            ae.resolution_date,
            ae.serious,
            ae.susar,
            ae.aesi,
            ae.aesi_category,
            ae.causality,
            ae.outcome,
        )
        .join(Subject, Subject.id == ae.subject_id)
        .join(Site, Site.id == Subject.site_id)
        .where(ae.id.in_(newest.scalar_subquery()))
        .order_by(ae.onset_date.desc(), ae.id.desc())
    ).mappings()
    return [dict(row) for row in rows]


def stopping_status(trial: Trial) -> list[dict[str, Any]]:
    """Each stopping rule with whether it is active, how often it fired and when last."""
    fired = {
        rule_id: (int(n), last)
        for rule_id, n, last in db.session.execute(
            sa.select(
                StoppingRuleFiring.rule_id,
                sa.func.count(),
                sa.func.max(StoppingRuleFiring.fired_at),
            )
            .where(StoppingRuleFiring.trial_id == trial.id)
            .group_by(StoppingRuleFiring.rule_id)
        ).all()
    }
    return [
        {
            "id": rule.id,
            "kind": rule.kind,
            "description": rule.description,
            "params": rule.params or {},
            "active": rule.active,
            "firings": fired.get(rule.id, (0, None))[0],
            "last_fired_at": fired.get(rule.id, (0, None))[1],
        }
        for rule in stopping.ensure_rules(trial.id)
    ]


def clock_select(scope: Scope) -> sa.Select[Any]:
    """The scope's clocks as the dashboard and the clock listing show them, soonest due
    first: each clock's columns with its event's term and its subject's and site's codes and
    the site's zone, in one statement (no ORM objects: the rows are shown, not changed)."""
    ae = scope.events
    report = ExpeditedReport
    return (
        sa.select(
            report.id,
            ae.id.label("adverse_event_id"),
            Subject.code.label("subject_code"),
            Site.code.label("site"),
            Site.timezone.label("site_timezone"),
            ae.term,
            report.authority,
            report.kind,
            report.clock_start,
            report.due_at,
            report.submitted_at,
            report.reference,
            report.late,
        )
        .select_from(report)
        .join(ae, ae.id == report.adverse_event_id)
        .join(Subject, Subject.id == ae.subject_id)
        .join(Site, Site.id == Subject.site_id)
        .where(*ae_conditions(scope))
        .order_by(report.due_at, report.id)
    )


def clock_rows(rows: Iterable[sa.RowMapping], now: datetime) -> Iterator[dict[str, Any]]:
    """Rows of `clock_select` with days left on the site's calendar, overdue and status."""
    for row in rows:
        yield {
            **row,
            **clocks.state_of(row["due_at"], row["submitted_at"], row["site_timezone"], now),
        }


def open_clocks(scope: Scope, now: datetime, limit: int = SECTION_ROWS) -> list[dict[str, Any]]:
    """Clocks not yet submitted, soonest due first, with days left and overdue."""
    query = clock_select(scope).where(ExpeditedReport.submitted_at.is_(None)).limit(limit)
    return list(clock_rows(db.session.execute(query).mappings(), now))


def site_choices(actor: Any) -> list[Site]:
    return list(db.session.execute(sites_service.site_query(actor, {})).scalars())


def safety_summary(actor: Any, trial: Trial, filters: dict[str, Any], now: datetime) -> dict:
    """Everything the dashboard shows, for `GET /trials/{id}/safety-summary` and the page."""
    scope = scope_for(actor, trial, filters)
    grades = by_grade_cohort(scope)
    aesis = aesi_by_category(scope)
    return {
        "trial": {"id": trial.id, "code": trial.code, "status": trial.status},
        "filters": {**scope.args(), **site_arg(filters)},
        "as_of": now,
        **headline(scope, now),
        "aesis": sum(r["events"] for r in aesis),
        "deaths": sum(r["events"] for r in grades if r["grade"] == 5),
        "by_soc_grade_cohort": by_soc_grade_cohort(scope),
        "by_grade_cohort": grades,
        "aesi_by_category": aesis,
        "aesi": recent_aesis(scope),
        "lab_shifts": lab_summary.lab_shifts(scope),
        "alt_series": lab_summary.alt_series(scope),
        "stopping_rules": stopping_status(trial),
        "clocks": open_clocks(scope, now),
    }


def cohort_comparison(actor: Any, trial: Trial, detail: bool = False) -> dict[str, Any]:
    """The cohort-over-cohort table for the escalation review (see `signals`): each cohort's
    dosed subjects with any event, grade 3 or more, serious, related, SUSAR, AESI (with
    `detail`, per SOC and AESI category too), with exact 95 % intervals and the days from
    dosing to the first."""
    return signals.cohort_comparison(actor, trial, detail)


def signal_table(actor: Any, trial: Trial, filters: dict[str, Any]) -> dict[str, Any]:
    """The same table in the dashboard's scope (filters: site, cohort, onset range)."""
    return signals.signals(actor, trial, filters)
