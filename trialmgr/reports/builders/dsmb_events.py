"""The DSMB report's adverse-event and laboratory sections: AEs by SOC, term and worst grade
per cohort (tables and a chart), the SAE, death and AESI listings, graded lab abnormalities
with the shift table and the ALT chart.

The numbers are the safety dashboard's (`safety.services.summary`, `lab_summary`,
`listings`) over a scope cut off at the report's data cut-off: events with onset on or
before it, entered by the end of that day at their site, as their version in force then;
lab draws collected and entered by then; subjects dosed by then. Listings are streamed
from the database and drawn as tables of `CHUNK_ROWS`, each with its header.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from reportlab.platypus import Flowable

from trialmgr.clock import local_date
from trialmgr.reports.builders.layout import (
    Column,
    data_table,
    fmt_date,
    gap,
    heading,
    para,
)
from trialmgr.reports.builders.registry import ReportContext, section
from trialmgr.reports.builders.safety_charts import alt_over_time, grades_by_cohort
from trialmgr.safety.services import lab_summary, listings, summary
from trialmgr.safety.services.scope import Scope, report_scope

KIND = "dsmb_safety"
GRADES = (1, 2, 3, 4, 5)


def scope_of(ctx: ReportContext) -> Scope:
    site_ids = ctx.site.id if ctx.site is not None else None
    return ctx.memo("safety-scope", lambda: report_scope(ctx.trial, ctx.cut_off, site_ids))


def _labels(ctx: ReportContext) -> list[str]:
    return [c.label for c in sorted(ctx.trial.cohorts, key=lambda c: c.sequence)]


def _cohort(ctx: ReportContext) -> dict[int, str]:
    return {c.id: c.label for c in ctx.trial.cohorts}


def _pivot(
    rows: Iterable[dict[str, Any]], key: tuple[str, ...], labels: list[str]
) -> list[tuple[Any, ...]]:
    """Rows of (key..., per cohort "subjects (events)", total) from per-cohort counts."""
    cells: dict[tuple[Any, ...], dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        cells[tuple(row[k] for k in key)][row["cohort"]] = (row["subjects"], row["events"])
    out = []
    for k, by_cohort in cells.items():
        total = (sum(s for s, _ in by_cohort.values()), sum(e for _, e in by_cohort.values()))
        out.append(
            (
                *k,
                *(
                    "{} ({})".format(*by_cohort[label]) if label in by_cohort else "0"
                    for label in labels
                ),
                "{} ({})".format(*total),
            )
        )
    return out


@section(KIND, "aes_by_soc", "Adverse events by system organ class, term and worst grade", 30)
def aes_by_soc(ctx: ReportContext) -> Iterator[Flowable]:
    scope = scope_of(ctx)
    labels = _labels(ctx)
    grades = summary.by_grade_cohort(scope)
    yield para(
        "Counts as on the safety dashboard, over events with onset on or before the cut-off "
        "and entered by then, each as its version in force at the cut-off. In the SOC and "
        "term tables each subject counts once per SOC (or term) and cohort, at the worst "
        "grade of their events there; a cell reads subjects (events)."
    )
    counts = {(r["cohort"], r["grade"]): r["events"] for r in grades}
    yield heading("Events by CTCAE grade, per cohort")
    yield from data_table(
        [
            Column("Cohort", 0.2),
            *(Column(f"Grade {g}", 0.12, right=True) for g in GRADES),
            Column("All grades", 0.2, right=True),
        ],
        (
            (
                label,
                *(counts.get((label, g), 0) for g in GRADES),
                sum(counts.get((label, g), 0) for g in GRADES),
            )
            for label in labels
        ),
        empty="The trial has no cohorts.",
    )
    yield gap(6)
    yield grades_by_cohort(labels, counts)
    share = 0.44 / max(len(labels) + 1, 1)
    yield heading("By system organ class and worst grade")
    yield from data_table(
        [
            Column("System organ class", 0.44, wrap=True),
            Column("Worst grade", 0.12, right=True),
            *(Column(label, share, right=True) for label in labels),
            Column("All cohorts", share, right=True),
        ],
        _pivot(summary.by_soc_grade_cohort(scope), ("soc", "worst_grade"), labels),
        empty="No adverse event by the cut-off.",
    )
    yield heading("By preferred term and worst grade")
    yield from data_table(
        [
            Column("System organ class", 0.22, wrap=True),
            Column("Term", 0.22, wrap=True),
            Column("Worst grade", 0.12, right=True),
            *(Column(label, share, right=True) for label in labels),
            Column("All cohorts", share, right=True),
        ],
        _pivot(summary.by_term_grade_cohort(scope), ("soc", "term", "worst_grade"), labels),
        empty="No adverse event by the cut-off.",
    )


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _criteria(value: Any) -> str:
    return ", ".join(str(c).replace("_", " ") for c in (value or [])) or "—"


@section(KIND, "sae_listing", "Serious adverse events and deaths", order=40)
def sae_listing(ctx: ReportContext) -> Iterator[Flowable]:
    scope = scope_of(ctx)
    cohort = _cohort(ctx)
    yield para(
        "Every serious adverse event (ICH E2A) with onset by the cut-off, oldest first, as "
        "its version in force at the cut-off; deaths (grade 5) are listed again below."
    )
    yield from data_table(
        [
            Column("AE", 0.05, right=True),
            Column("Subject", 0.12),
            Column("Cohort", 0.07),
            Column("Term · SOC", 0.21, wrap=True),
            Column("Onset", 0.11),
            Column("Gr", 0.04, right=True),
            Column("Seriousness", 0.14, wrap=True),
            Column("Causality", 0.09),
            Column("Exp.", 0.05),
            Column("Outcome", 0.12, wrap=True),
        ],
        (
            (
                r.id,
                r.subject_code,
                cohort[r.cohort_id],
                f"{r.pt_term or r.term} · {r.soc}",
                fmt_date(r.onset_date),
                r.grade,
                _criteria(r.seriousness_criteria),
                r.causality,
                _yes(r.expected),
                (r.outcome or "ongoing").replace("_", " ")
                + (f" {fmt_date(r.resolution_date)}" if r.resolution_date else ""),
            )
            for r in listings.event_listing(scope, {"serious": True})
        ),
        empty="No serious adverse event by the cut-off.",
    )
    yield heading("Deaths")
    yield from data_table(
        [
            Column("AE", 0.05, right=True),
            Column("Subject", 0.12),
            Column("Cohort", 0.07),
            Column("Term · SOC", 0.33, wrap=True),
            Column("Onset", 0.11),
            Column("Died", 0.11),
            Column("Causality", 0.12),
            Column("SUSAR", 0.09),
        ],
        (
            (
                r.id,
                r.subject_code,
                cohort[r.cohort_id],
                f"{r.pt_term or r.term} · {r.soc}",
                fmt_date(r.onset_date),
                fmt_date(r.resolution_date),
                r.causality,
                _yes(r.susar),
            )
            for r in listings.event_listing(scope, {"grade": 5})
        ),
        empty="No death by the cut-off.",
    )


@section(KIND, "aesi_listing", "Adverse events of special interest", order=50)
def aesi_listing(ctx: ReportContext) -> Iterator[Flowable]:
    scope = scope_of(ctx)
    cohort = _cohort(ctx)
    yield para(
        "Gene-therapy AESIs (hepatotoxicity, TMA/complement activation, myocarditis, "
        "infusion reaction, malignancy, neurological, autoimmune, haematological) with onset "
        "by the cut-off: by category and cohort, then each event."
    )
    yield from data_table(
        [
            Column("Category", 0.3),
            Column("Cohort", 0.14),
            Column("Subjects", 0.18, right=True),
            Column("Events", 0.18, right=True),
            Column("Worst grade", 0.2, right=True),
        ],
        (
            (
                (r["category"] or "unspecified").replace("_", " "),
                r["cohort"],
                r["subjects"],
                r["events"],
                r["worst_grade"],
            )
            for r in summary.aesi_by_category(scope)
        ),
        empty="No AESI by the cut-off.",
    )
    yield gap(6)
    yield from data_table(
        [
            Column("AE", 0.05, right=True),
            Column("Subject", 0.12),
            Column("Cohort", 0.07),
            Column("Category", 0.14),
            Column("Term", 0.22, wrap=True),
            Column("Onset", 0.11),
            Column("Gr", 0.04, right=True),
            Column("Serious", 0.08),
            Column("Outcome", 0.17, wrap=True),
        ],
        (
            (
                r.id,
                r.subject_code,
                cohort[r.cohort_id],
                (r.aesi_category or "unspecified").replace("_", " "),
                r.pt_term or r.term,
                fmt_date(r.onset_date),
                r.grade,
                _yes(r.serious),
                (r.outcome or "ongoing").replace("_", " "),
            )
            for r in listings.event_listing(scope, {"aesi": True})
        ),
        empty="",
    )


def _grade(value: int | None) -> str:
    return "no draw before dosing" if value is None else str(value)


@section(KIND, "labs", "Laboratory abnormalities", order=60)
def labs(ctx: ReportContext) -> Iterator[Flowable]:
    scope = scope_of(ctx)
    cohort = _cohort(ctx)
    yield para(
        "CTCAE v5.0 grades of the draws collected and entered by the cut-off. Shifts: per "
        "analyte and cohort, each dosed subject's baseline grade (last draw before dosing) "
        "against their worst grade after dosing; grade 0 is normal."
    )
    yield heading("Shifts from baseline")
    yield from data_table(
        [
            Column("Analyte", 0.14),
            Column("Cohort", 0.14),
            Column("Baseline grade", 0.26),
            Column("Worst grade after dosing", 0.26, right=True),
            Column("Subjects", 0.2, right=True),
        ],
        (
            (
                r["analyte"],
                r["cohort"],
                _grade(r["baseline_grade"]),
                r["worst_grade"],
                r["subjects"],
            )
            for r in lab_summary.lab_shifts(scope)
        ),
        empty="No lab draw after dosing by the cut-off.",
    )
    series = lab_summary.alt_series(scope)
    if series:
        yield gap(8)
        yield alt_over_time(series)
    yield heading("Draws of grade 3 or more")
    yield from data_table(
        [
            Column("Subject", 0.13),
            Column("Site", 0.08),
            Column("Cohort", 0.08),
            Column("Analyte", 0.09),
            Column("Collected (site)", 0.14),
            Column("Value", 0.2, right=True),
            Column("x ULN", 0.09, right=True),
            Column("Grade", 0.07, right=True),
            Column("Hy's law", 0.12),
        ],
        (
            (
                r.subject_code,
                r.site,
                cohort[r.cohort_id],
                r.analyte,
                fmt_date(local_date(r.collected_at, r.timezone)),
                f"{float(r.value_canonical):g} {r.canonical_unit}",
                "" if r.uln_multiple is None else f"{float(r.uln_multiple):.2f}",
                r.grade,
                "CASE" if r.hys_law else "no",
            )
            for r in listings.lab_listing(scope, min_grade=3)
        ),
        empty="No draw of grade 3 or more by the cut-off.",
    )
