"""The feasibility report.

Interim format: the metrics, progression criteria and milestones come from the feasibility
and CONSORT services (one source of numbers with the dashboard); until they are wired in,
the report gives recruitment by site from the site records and lists what is to come.
"""

from __future__ import annotations

from collections.abc import Iterator

from reportlab.platypus import Flowable

from trialmgr.reports.builders.common import cover_page, enrolment_chart
from trialmgr.reports.builders.layout import Column, data_table, gap, para, percent
from trialmgr.reports.builders.registry import (
    TEMPLATE_VERSIONS,
    ReportContext,
    cover,
    planned,
    section,
)
from trialmgr.reports.builders.site_enrollment import sites_of

KIND = "feasibility"
TEMPLATE_VERSIONS[KIND] = "feasibility 0.1 (interim)"
cover(KIND)(cover_page)

planned(
    KIND,
    "criteria",
    "Progression criteria",
    "Each criterion against its target with its green, amber or red light and the value's "
    "exact 95 % interval, and the overall decision: proceed, amend or stop.",
)
planned(
    KIND,
    "metrics",
    "Feasibility metrics and their trends",
    "Recruitment rate, screen-to-enrol ratio, eligibility, consent, retention, visit "
    "adherence, data completeness and SAE reporting timeliness, with intervals, over time.",
)
planned(
    KIND,
    "milestones",
    "Milestones, planned against actual",
    "Each milestone's planned and actual date and its delay.",
)
planned(
    KIND,
    "consort",
    "CONSORT flow",
    "Screened, eligible, consented, enrolled, dosed and completed, with the reasons for "
    "leaving at each step.",
)


@section(KIND, "recruitment", "Recruitment by site", order=10)
def recruitment(ctx: ReportContext) -> Iterator[Flowable]:
    sites = sites_of(ctx)
    yield para(
        "The inputs of the recruitment rate, per site: subjects enrolled by the cut-off and "
        "the months the site was open (active with every approval current). The rate itself, "
        "with its interval, comes with the feasibility metrics."
    )
    columns = [
        Column("Site", 0.12),
        Column("Status on cut-off", 0.24),
        Column("Months open", 0.14, right=True),
        Column("Screened", 0.12, right=True),
        Column("Enrolled", 0.12, right=True),
        Column("Target", 0.12, right=True),
        Column("Of target", 0.14, right=True),
    ]
    yield from data_table(
        columns,
        (
            (
                s.site.code,
                s.status,
                f"{s.months_open:.1f}",
                s.screening.screened,
                s.enrolled,
                s.target,
                percent(s.enrolled, s.target),
            )
            for s in sites
        ),
        empty="No site takes part by the cut-off.",
    )
    if sites:
        yield gap(8)
        yield enrolment_chart(
            [s.site.code for s in sites], [s.enrolled for s in sites], [s.target for s in sites]
        )
