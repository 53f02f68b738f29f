"""The feasibility numbers and the CONSORT counts, counted by the database.

`metrics` defines each metric on the records one by one (as of a date); this module
counts the same numerators and denominators with a few grouped queries, so a review costs
the same whatever the number of records. Each record contributes to a count from one day
on (a screening from its `screened_on`, a consent from the later of screening and consent,
a visit as due from the earlier of its `done_on` and the day after its window closed, a
retained subject from the later of enrolment and the primary-endpoint visit, an expedited
report from its due or submission day at the site...). The queries keep the records
dated on or before the review date and group them by site and by the month of that day:
as of the review date a count is the sum of its groups, and as of a month-end of the
trend it is the sum of the groups up to that month (every point of the trend is a
month-end, or the review date itself, in its own month).

Records are read as `dataset.load` reads them: the trial's, at the sites of the reading,
entered (`created_at`) before the `entered_by` day ended at their site when a report
passes its cut-off (screenings, subjects and expedited reports; visits and dosing go with
their subject).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from trialmgr.clock import local_date
from trialmgr.enrollment.models import LTFU_QUESTIONS, Screening, Subject, Trial, Visit
from trialmgr.extensions import db
from trialmgr.milestones.services import dataset as ds
from trialmgr.milestones.services import metrics
from trialmgr.milestones.services.stats import Estimate, inverse_proportion, proportion, rate
from trialmgr.partners.models import Site
from trialmgr.partners.services.status import DAYS_PER_MONTH, open_periods
from trialmgr.safety.models import ExpeditedReport

# The states of a screening with a complete assessment (the others are pending).
ASSESSED = ("eligible", "screen_failed", "declined")


ONE = sa.literal_column("1", sa.Integer)


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


# --- SQL the two databases spell differently ----------------------------------------------


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _month(expr: Any) -> Any:
    """'YYYY-MM' of a date."""
    if _dialect() == "sqlite":
        return sa.func.strftime(sa.literal_column("'%Y-%m'"), expr)
    return sa.func.to_char(expr, sa.literal_column("'YYYY-MM'"))


def _day_after(expr: Any) -> Any:
    if _dialect() == "sqlite":
        return sa.func.date(expr, sa.literal_column("'+1 day'"), type_=sa.Date)
    return expr + sa.literal_column("1", sa.Integer)


def _later(a: Any, b: Any) -> Any:
    """The later of two dates, neither NULL."""
    return sa.case((a >= b, a), else_=b)


def _earlier(a: Any, b: Any) -> Any:
    return sa.case((a <= b, a), else_=b)


def has_items(column: Any) -> Any:
    """A JSON list column holds at least one item."""
    if _dialect() == "sqlite":
        zero = sa.literal_column("0", sa.Integer)
        return sa.func.coalesce(sa.func.json_array_length(column), zero) > zero
    return sa.case(
        (
            sa.func.json_typeof(column) == sa.literal_column("'array'"),
            sa.func.json_array_length(column),
        ),
        else_=sa.literal_column("0", sa.Integer),
    ) > sa.literal_column("0", sa.Integer)


def flag(condition: Any) -> Any:
    """1 or 0 (constants spelled in the SQL, so that PostgreSQL sees a grouped expression
    and its select column as the same)."""
    return sa.case((condition, ONE), else_=sa.literal_column("0", sa.Integer))


def _filled_text(column: Any) -> Any:
    """A text field with something besides white space in it."""
    blanks = " \t\n\r\f\v"
    if _dialect() == "sqlite":
        stripped = sa.func.trim(column, blanks)
    else:
        stripped = sa.func.btrim(column, blanks)
    return sa.and_(column.is_not(None), stripped != "")


# --- what is read --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """The trial, the sites of the reading (the reader's, or the one asked for), and the
    report's cut-off (`entered_by`, None for the pages)."""

    trial: Trial
    sites: list[Site]
    entered_by: date | None = None

    @property
    def site_ids(self) -> list[int]:
        return [site.id for site in self.sites]

    def ends(self, day: date) -> Any:
        """Per row's site, the first instant after `day` there (SQL, on `site_id`)."""
        return {site.id: ds.end_of_day(day, site.timezone).astimezone(UTC) for site in self.sites}

    def before_end_of(self, day: date, moment: Any, site_id: Any) -> Any:
        """The instant fell on or before `day` at the row's site."""
        ends = self.ends(day)
        if not ends:
            return sa.false()
        return moment < sa.case(ends, value=site_id, else_=max(ends.values()))

    def entered(self, created_at: Any, site_id: Any) -> Any:
        if self.entered_by is None:
            return sa.true()
        return self.before_end_of(self.entered_by, created_at, site_id)

    def screenings(self) -> Any:
        return sa.and_(
            Screening.trial_id == self.trial.id,
            Screening.site_id.in_(self.site_ids),
            self.entered(Screening.created_at, Screening.site_id),
        )

    def subjects(self, cohort_id: int | None = None) -> Any:
        return sa.and_(
            Subject.trial_id == self.trial.id,
            Subject.site_id.in_(self.site_ids),
            self.entered(Subject.created_at, Subject.site_id),
            sa.true() if cohort_id is None else Subject.cohort_id == cohort_id,
        )

    def reports(self) -> Any:
        return sa.and_(
            ExpeditedReport.trial_id == self.trial.id,
            ExpeditedReport.site_id.in_(self.site_ids),
            self.entered(ExpeditedReport.created_at, ExpeditedReport.site_id),
        )


def reading(
    actor: Any,
    trial: Trial,
    site_id: int | None = None,
    entered_by: date | None = None,
    history: bool = True,
) -> Reading:
    """The reading of a review (`history`: with the sites' status history and approvals,
    which site-months need and the CONSORT flow does not)."""
    return Reading(trial, ds.scoped_sites(actor, site_id, history), entered_by)


def primary_visit() -> Any:
    """A visit alias and the condition that makes it its subject's primary-endpoint visit:
    the first by date (as `dataset.primary_visit`; a subject has one unless an amendment
    moved the endpoint). An anti-join, which both databases run with the subject index."""
    visit = aliased(Visit, name="primary_visit")
    earlier = aliased(Visit, name="earlier_primary")
    first = sa.and_(
        visit.primary_endpoint.is_(True),
        ~sa.exists().where(
            earlier.subject_id == visit.subject_id,
            earlier.primary_endpoint.is_(True),
            sa.or_(
                earlier.scheduled_on < visit.scheduled_on,
                sa.and_(earlier.scheduled_on == visit.scheduled_on, earlier.id < visit.id),
            ),
        ),
    )
    return visit, first


# --- the feasibility counts -----------------------------------------------------------------


@dataclass
class Tally:
    """Counts by name: per site (the review date's per-site rows) and per month over the
    sites of the reading (the review and its trend)."""

    calendar: Calendar
    by_site: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    by_month: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    first_screened: dict[int, str] = field(default_factory=dict)
    earliest_screening: date | None = None
    _cumulative: dict[str, tuple[list[str], list[int]]] = field(default_factory=dict)

    def add(self, name: str, site_id: int | None, month: str, n: int) -> None:
        if site_id is not None:
            self.by_site[name][site_id] += n
        self.by_month[name][month] += n

    def site_total(self, name: str, site_id: int) -> int:
        return self.by_site[name][site_id]

    def upto(self, name: str, month: str) -> int:
        """The count over the reading's sites of the months up to `month`."""
        if name not in self._cumulative:
            months = sorted(self.by_month[name])
            totals, running = [], 0
            for each in months:
                running += self.by_month[name][each]
                totals.append(running)
            self._cumulative[name] = (months, totals)
        months, totals = self._cumulative[name]
        at = bisect.bisect_right(months, month)
        return totals[at - 1] if at else 0


def _fields(kind: str) -> int:
    return len(metrics.REQUIRED_FIELDS.get(kind, ("done_on",)))


def _filled_fields() -> Any:
    """The required fields a done visit has filled (SQL, per kind; the record-by-record
    reference is in tests/feasibility_reference.py)."""
    answers = [flag(Visit.answers[q].as_string().is_not(None)) for q in LTFU_QUESTIONS]
    ltfu = sa.literal_column("1", sa.Integer)
    for each in answers:
        ltfu = ltfu + each
    return sa.case(
        (Visit.kind == "protocol", 1 + flag(_filled_text(Visit.notes))),
        (Visit.kind == "ltfu", ltfu),
        (Visit.kind == "rcr", 1 + flag(_filled_text(Visit.result))),
        else_=1,
    )


def count(read: Reading, day: date) -> Tally:
    """Every feasibility count of the reading as of `day`, by site and by month."""
    tally = Tally(calendar=Calendar(read, day))
    if not read.sites:
        return tally
    _count_screenings(read, day, tally)
    _count_subjects(read, day, tally)
    _count_visits(read, day, tally)
    _count_reports(read, day, tally)
    return tally


def _count_screenings(read: Reading, day: date, tally: Tally) -> None:
    declined_failing = sa.and_(
        Screening.outcome == "declined", has_items(Screening.failed_criteria)
    )
    consented = sa.case((Screening.consented_on <= day, _month(Screening.consented_on)))
    keys = (
        Screening.site_id,
        Screening.outcome,
        flag(declined_failing),
        _month(Screening.screened_on),
        consented,
    )
    rows = db.session.execute(
        sa.select(*keys, sa.func.count())
        .where(read.screenings(), Screening.screened_on <= day)
        .group_by(*keys)
    ).all()
    for site_id, outcome, failing, screened_m, consented_m, n in rows:
        state = screening_state(outcome, bool(failing))
        tally.add("screened", site_id, screened_m, n)
        if site_id not in tally.first_screened or screened_m < tally.first_screened[site_id]:
            tally.first_screened[site_id] = screened_m
        if state != "pending":
            tally.add("assessed", site_id, screened_m, n)
        if state in ("eligible", "declined"):
            tally.add("eligible", site_id, screened_m, n)
            tally.add("asked", site_id, screened_m, n)
        elif consented_m is not None:
            tally.add("asked", site_id, max(screened_m, consented_m), n)
        if consented_m is not None:
            tally.add("consented", site_id, max(screened_m, consented_m), n)
    tally.earliest_screening = db.session.execute(
        sa.select(sa.func.min(Screening.screened_on)).where(read.screenings())
    ).scalar_one()


def screening_state(outcome: str | None, failing: bool) -> str:
    """`metrics.screening_state` from the outcome and whether criteria failed."""
    if outcome == "declined":
        return "failed" if failing else "declined"
    return {"eligible": "eligible", "screen_failed": "failed"}.get(outcome or "", "pending")


def _count_subjects(read: Reading, day: date, tally: Tally) -> None:
    enrolled_m = _month(Subject.enrolled_on)
    for site_id, month, n in db.session.execute(
        sa.select(Subject.site_id, enrolled_m, sa.func.count())
        .where(read.subjects(), Subject.enrolled_on <= day)
        .group_by(Subject.site_id, enrolled_m)
    ):
        tally.add("enrolled", site_id, month, n)
    # Screened per enrolled: the enrolled whose screening is assessed (and in the reading).
    screened_m = _month(Screening.screened_on)
    rows = db.session.execute(
        sa.select(Subject.site_id, Screening.site_id, enrolled_m, screened_m, sa.func.count())
        .join(Screening, Screening.id == Subject.screening_id)
        .where(
            read.subjects(),
            read.screenings(),
            Subject.enrolled_on <= day,
            Screening.screened_on <= day,
            Screening.outcome.in_(ASSESSED),
        )
        .group_by(Subject.site_id, Screening.site_id, enrolled_m, screened_m)
    ).all()
    for subject_site, screening_site, e_month, s_month, n in rows:
        own = subject_site if subject_site == screening_site else None
        tally.add("assessed_enrolled", own, max(e_month, s_month), n)
    # Retention: the primary-endpoint visit of the enrolled.
    primary, first = primary_visit()
    done = sa.and_(primary.status == "done", primary.done_on.is_not(None))
    due_from = sa.case(
        (done, _earlier(primary.done_on, _day_after(primary.window_end))),
        (
            sa.or_(
                primary.status != "cancelled",
                primary.cancel_reason.in_(metrics.EXIT_REASONS),
            ),
            _day_after(primary.window_end),
        ),
    )
    due_m = _month(due_from)
    done_m = sa.case((sa.and_(done, primary.done_on <= day), _month(primary.done_on)))
    rows = db.session.execute(
        sa.select(Subject.site_id, enrolled_m, due_m, done_m, sa.func.count())
        .join(primary, sa.and_(primary.subject_id == Subject.id, first))
        .where(read.subjects(), Subject.enrolled_on <= day, due_from <= day)
        .group_by(Subject.site_id, enrolled_m, due_m, done_m)
    ).all()
    for site_id, e_month, d_month, r_month, n in rows:
        tally.add("primary_due", site_id, max(e_month, d_month), n)
        if r_month is not None:
            tally.add("retained", site_id, max(e_month, r_month), n)


def _count_visits(read: Reading, day: date, tally: Tally) -> None:
    """Visits due, done in their window, and their required fields (every visit of the
    reading's subjects, enrolled by the date or not, as that reference's `_due_visits`)."""
    done = sa.and_(Visit.status == "done", Visit.done_on.is_not(None))
    due_from = sa.case(
        (done, _earlier(Visit.done_on, _day_after(Visit.window_end))),
        (Visit.status != "cancelled", _day_after(Visit.window_end)),
    )
    due_m = _month(due_from)
    done_by = sa.and_(done, Visit.done_on <= day)
    done_m = sa.case((done_by, _month(Visit.done_on)))
    in_window = flag(
        sa.and_(done_by, Visit.window_start <= Visit.done_on, Visit.done_on <= Visit.window_end)
    )
    rows = db.session.execute(
        sa.select(
            Subject.site_id,
            Visit.kind,
            due_m,
            done_m,
            in_window,
            sa.func.count(),
            sa.func.sum(_filled_fields()),
        )
        .join(Visit, Visit.subject_id == Subject.id)
        .where(read.subjects(), due_from <= day)
        .group_by(Subject.site_id, Visit.kind, due_m, done_m, in_window)
    ).all()
    for site_id, kind, d_month, f_month, window, n, filled in rows:
        tally.add("visits_due", site_id, d_month, n)
        tally.add("fields_due", site_id, d_month, n * _fields(kind))
        if f_month is not None:
            tally.add("fields_filled", site_id, f_month, int(filled))
            if window:
                tally.add("in_window", site_id, f_month, n)


def _count_reports(read: Reading, day: date, tally: Tally) -> None:
    """Expedited reports due (due, or submitted, by the day at the site) and on time, by
    the month at the site of the earlier of the two instants."""
    submitted = ExpeditedReport.submitted_at
    due = ExpeditedReport.due_at
    first = sa.case((sa.and_(submitted.is_not(None), submitted < due), submitted), else_=due)
    on_time = sa.and_(submitted.is_not(None), submitted <= due)
    where = (read.reports(), read.before_end_of(day, first, ExpeditedReport.site_id))
    if _dialect() == "postgresql":
        zones = {site.id: site.timezone or "UTC" for site in read.sites}
        tz = sa.case(zones, value=ExpeditedReport.site_id, else_="UTC")
        due_m = _month(sa.func.timezone(tz, first))
        on_time_m = sa.case((on_time, _month(sa.func.timezone(tz, submitted))))
        for site_id, d_month, o_month, n in db.session.execute(
            sa.select(ExpeditedReport.site_id, due_m, on_time_m, sa.func.count())
            .where(*where)
            .group_by(ExpeditedReport.site_id, due_m, on_time_m)
        ):
            tally.add("reports_due", site_id, d_month, n)
            if o_month is not None:
                tally.add("reports_on_time", site_id, o_month, n)
        return
    # SQLite keeps no time zones: the day at the site is found here, one report at a time.
    zones = {site.id: site.timezone for site in read.sites}
    for site_id, due_at, submitted_at in db.session.execute(
        sa.select(ExpeditedReport.site_id, due, submitted).where(*where)
    ):
        zone_name = zones.get(site_id)
        late = submitted_at is None or submitted_at > due_at
        moment = due_at if submitted_at is None or due_at <= submitted_at else submitted_at
        tally.add("reports_due", site_id, month_key(local_date(moment, zone_name)), 1)
        if not late:
            tally.add("reports_on_time", site_id, month_key(local_date(submitted_at, zone_name)), 1)


def estimates(counts: Any, months: float) -> dict[str, Estimate]:
    """The metrics from their counts (`counts(name)`), in the contract's order."""
    return {
        "recruitment_rate": rate(counts("enrolled"), round(months, 6)),
        "screen_to_enrol_ratio": inverse_proportion(
            counts("assessed"), counts("assessed_enrolled")
        ),
        "eligibility_rate": proportion(counts("eligible"), counts("assessed")),
        "consent_rate": proportion(counts("consented"), counts("asked")),
        "retention": proportion(counts("retained"), counts("primary_due")),
        "visit_adherence": proportion(counts("in_window"), counts("visits_due")),
        "data_completeness": proportion(counts("fields_filled"), counts("fields_due")),
        "sae_timeliness": proportion(counts("reports_on_time"), counts("reports_due")),
    }


class Calendar:
    """When each site of the reading was open for the trial, up to the review date: its
    open periods read once (`open_periods`), then clipped at each point of the trend
    (`dataset.site_months` and `first_open_day`, without re-reading the history)."""

    def __init__(self, read: Reading, day: date) -> None:
        until = day + timedelta(days=1)
        self.day = day
        self.starts = {site.id: ds.recruiting_from(read.trial, site) for site in read.sites}
        self.periods = {site.id: open_periods(site, until) for site in read.sites}

    def _days_before(self, site_id: int, until: date) -> int:
        clipped = [(start, min(end, until)) for start, end in self.periods[site_id]]
        return sum((end - start).days for start, end in clipped if end > start)

    def site_months(self, site: Site, point: date) -> float:
        start = self.starts[site.id]
        if start is None or start > point:
            return 0.0
        until = point + timedelta(days=1)
        opened = self._days_before(site.id, until) / DAYS_PER_MONTH
        return max(opened - self._days_before(site.id, start) / DAYS_PER_MONTH, 0.0)

    def first_open_day(self, site: Site, point: date) -> date | None:
        start = self.starts[site.id]
        if start is None:
            return None
        until = point + timedelta(days=1)
        for period_start, period_end in self.periods[site.id]:
            period_end = min(period_end, until)
            if period_end <= period_start:
                continue
            if period_end > start:
                return max(period_start, start)
        return None


def taking_part(read: Reading, tally: Tally, point: date) -> list[Site]:
    """`dataset.taking_part` as of a point of the review (open for the trial, or screened)."""
    month = month_key(point)
    return [
        site
        for site in read.sites
        if (site.id in tally.first_screened and tally.first_screened[site.id] <= month)
        or tally.calendar.first_open_day(site, point) is not None
    ]


def months_of(tally: Tally, sites: Iterable[Site], point: date) -> float:
    return sum((tally.calendar.site_months(site, point) for site in sites), 0.0)


def overall(read: Reading, tally: Tally, point: date) -> dict[str, Estimate]:
    """Every metric over the reading's sites as of a point (the review date, or a month-end
    before it)."""
    month = month_key(point)
    months = months_of(tally, taking_part(read, tally, point), point)
    return estimates(lambda name: tally.upto(name, month), months)


def of_site(read: Reading, tally: Tally, site: Site, day: date) -> dict[str, Estimate]:
    """Every metric of one site as of the review date."""
    return estimates(
        lambda name: tally.site_total(name, site.id), tally.calendar.site_months(site, day)
    )
