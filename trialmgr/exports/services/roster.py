"""The trial's subjects as every export needs them: pseudonymous code, site, cohort, the
dosing day on the site's calendar (study day 0), in one query of plain rows (no ORM
identity map, so 10,000 subjects cost a few megabytes), and the id ranges exports walk
subject by subject."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from trialmgr.clock import local_date, zone
from trialmgr.enrollment.models import Cohort, Dosing, Screening, Subject
from trialmgr.extensions import db
from trialmgr.partners.models import Site


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    id: int
    code: str
    site_id: int
    site_code: str
    site_zone: str
    cohort_label: str
    status: str
    sex: str
    birth_year: int
    dosed_at: datetime | None
    dosed_on: date | None  # the site's calendar day of dosing: study day 0

    def study_day(self, on: date | None) -> int | None:
        if on is None or self.dosed_on is None:
            return None
        return (on - self.dosed_on).days

    def local(self, moment: datetime | None) -> date | None:
        return None if moment is None else local_date(moment, self.site_zone)


def roster(trial_id: int) -> dict[int, SubjectInfo]:
    rows = db.session.execute(
        sa.select(
            Subject.id,
            Subject.code,
            Subject.site_id,
            Site.code,
            Site.timezone,
            Cohort.label,
            Subject.status,
            Screening.sex,
            Screening.birth_year,
            Dosing.dosed_at,
        )
        .join(Site, Site.id == Subject.site_id)
        .join(Cohort, Cohort.id == Subject.cohort_id)
        .join(Screening, Screening.id == Subject.screening_id)
        .outerjoin(Dosing, Dosing.subject_id == Subject.id)
        .where(Subject.trial_id == trial_id)
        .order_by(Subject.id)
    ).tuples()
    out = {}
    for sid, code, site_id, site_code, tz, cohort, status, sex, birth_year, dosed_at in rows:
        dosed_on = None if dosed_at is None else dosed_at.astimezone(zone(tz)).date()
        out[sid] = SubjectInfo(
            sid, code, site_id, site_code, tz, cohort, status, sex, birth_year, dosed_at, dosed_on
        )
    return out


def chunks(subjects: dict[int, SubjectInfo], size: int) -> Iterator[list[SubjectInfo]]:
    """The subjects in id order, `size` at a time."""
    batch: list[SubjectInfo] = []
    for info in subjects.values():
        batch.append(info)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
