"""Subjects: enrolment from an eligible screening into a cohort with room, pseudonymous
codes, withdrawal and end of participation."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from trialmgr.audit import services as audit
from trialmgr.clock import check_not_future
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import (
    ENDED_STATUSES,
    Cohort,
    ConsentVersion,
    Dosing,
    Screening,
    Subject,
    SubjectConsent,
    Trial,
)
from trialmgr.enrollment.policies import require_site_worker
from trialmgr.enrollment.services.consent import consent_version_on, needs_reconsent
from trialmgr.enrollment.services.screening import get_screening
from trialmgr.enrollment.services.trials import get_cohort
from trialmgr.errors import Conflict, Invalid, NotFound
from trialmgr.extensions import db
from trialmgr.partners.models import Site
from trialmgr.partners.policies import may_see_site, scope_sites
from trialmgr.partners.services.sites import (
    assert_site_open,
    check_not_before_activation,
    site_local_date,
    site_today,
)

# No I, O, 0 or 1: codes are read aloud and copied by hand.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 5
CODE_ATTEMPTS = 20


def _new_code(site: Site) -> str:
    """Site code + random part: pseudonymous, never derived from personal data."""
    return f"{site.code}-{''.join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))}"


def _insert_with_fresh_code(subject: Subject, site: Site) -> None:
    """Give the subject a code nobody has: a code already taken (or taken by a concurrent
    enrolment between the check and the insert) is drawn again, inside a savepoint."""
    for _ in range(CODE_ATTEMPTS):
        code = _new_code(site)
        if db.session.execute(sa.select(Subject.id).where(Subject.code == code)).first():
            continue
        subject.code = code
        try:
            with db.session.begin_nested():
                db.session.add(subject)
                db.session.flush()
            return
        except sa.exc.IntegrityError:
            db.session.expunge(subject) if subject in db.session else None
            continue
    raise Conflict("Could not draw a free subject code; try again.", title="Busy")


def slots_taken(cohort: Cohort) -> int:
    """Subjects holding a slot of the cohort, counted in SQL: every dosed subject, and the
    undosed who have not left (any exit before dosing frees the slot)."""
    dosed = sa.exists().where(Dosing.subject_id == Subject.id)
    holding = sa.or_(
        dosed, sa.and_(Subject.status.not_in(ENDED_STATUSES), Subject.withdrawal_kind.is_(None))
    )
    query = sa.select(sa.func.count()).where(Subject.cohort_id == cohort.id, holding)
    return int(db.session.execute(query).scalar_one())


def _enrolment_consent(
    screening: Screening, data: dict[str, Any], today: date
) -> tuple[date, ConsentVersion]:
    """The consent the enrolment rests on: the one recorded on the screening, or given
    here (then it must agree with the screening's, if that holds one)."""
    trial, site = screening.trial, screening.site
    on, version_id = data.get("consented_on"), data.get("consent_version_id")
    if on is None and version_id is None:
        if screening.consented_on is None or screening.consent_version is None:
            raise Invalid(
                "Record the consent: on the screening, or here.",
                errors={"consented_on": ["Required: the screening holds no consent."]},
            )
        return screening.consented_on, screening.consent_version
    if on is None or version_id is None:
        field = "consented_on" if on is None else "consent_version_id"
        raise Invalid("Give the consent date and version together.", errors={field: ["Required."]})
    if screening.consented_on is not None and (
        on != screening.consented_on or version_id != screening.consent_version_id
    ):
        held = screening.consent_version.version if screening.consent_version else "?"
        raise Invalid(
            "The screening already records a different consent.",
            errors={
                "consented_on": [
                    f"The screening records consent on {screening.consented_on} (version {held})."
                ]
            },
        )
    check_not_future("consented_on", on, today)
    check_not_before_activation("consented_on", on, site)
    return on, consent_version_on(trial, site.id, version_id, on)


def enrol(actor: Any, data: dict[str, Any], now: datetime) -> Subject:
    """Enrol from an eligible screening with a signed consent into a cohort with room, at a
    site open on the enrolment date and today. Capacity is a hard cap: the cohort row is
    locked (PostgreSQL) or the write lock is held (SQLite) from the count to the insert."""
    screening = get_screening(actor, data["screening_id"])
    require_site_worker(actor, screening.site_id)
    trial = screening.trial
    cohort = get_cohort(trial, data["cohort_id"])
    lock_rows(db.session, Trial, trial.id)  # same order as dosing and safety writes
    lock_rows(db.session, Cohort, cohort.id)
    lock_rows(db.session, Screening, screening.id)
    if subject_of_screening(screening) is not None:
        raise Conflict("This screening is already enrolled.", title="Already enrolled")
    if screening.outcome != "eligible":
        raise Conflict(
            f"The screening outcome is {screening.outcome}, not eligible.", title="Not eligible"
        )
    if trial.status == "paused":
        raise Conflict(
            f"Enrolment is paused trial-wide: {trial.paused_reason}", title="Trial paused"
        )
    if trial.status != "open":
        raise Conflict(
            f"The trial is {trial.status}; enrolment needs an open trial.", title="Trial not open"
        )
    site = screening.site
    today = site_today(site, now)
    enrolled_on = data.get("enrolled_on") or today
    check_not_future("enrolled_on", enrolled_on, today)
    consented_on, version = _enrolment_consent(screening, data, today)
    if enrolled_on < consented_on:
        raise Invalid(
            "Enrolment before consent.", errors={"enrolled_on": ["Before the consent date."]}
        )
    assert_site_open(site, enrolled_on, "enrolment")
    assert_site_open(site, today, "enrolment")
    if slots_taken(cohort) >= cohort.capacity:
        raise Conflict(
            f"Cohort {cohort.label} is full ({cohort.capacity} of {cohort.capacity}).",
            title="Cohort full",
        )
    with audit.audited(actor, action="subject.enrol"):
        if screening.consented_on is None:
            screening.consented_on, screening.consent_version = consented_on, version
        subject = Subject(
            trial=trial,
            site_id=site.id,
            site=site,
            screening=screening,
            cohort=cohort,
            status="enrolled",
            enrolled_on=enrolled_on,
            consent_version=version,
            consented_on=consented_on,
        )
        SubjectConsent(subject=subject, consent_version=version, consented_on=consented_on)
        # consent given (back-dated) on a version since superseded by one requiring re-consent
        subject.reconsent_due = needs_reconsent(subject, today)
        _insert_with_fresh_code(subject, site)
    return subject


# With its site: every caller judges dates in the site's zone. Built once (a hot path: every
# clinical record names its subject by code).
_SUBJECT_BY_CODE = (
    sa.select(Subject).where(Subject.code == sa.bindparam("code")).options(joinedload(Subject.site))
)


def get_subject(actor: Any, code: str) -> Subject:
    """A subject the actor may see by code; another site's subject answers 404."""
    subject = db.session.execute(_SUBJECT_BY_CODE, {"code": code.upper()}).scalar_one_or_none()
    if subject is None or not may_see_site(actor, subject.site_id):
        raise NotFound(f"No subject {code}.")
    return subject


def subject_of_screening(screening: Screening) -> Subject | None:
    """The subject enrolled from this screening, if any."""
    return db.session.execute(
        sa.select(Subject).where(Subject.screening_id == screening.id)
    ).scalar_one_or_none()


def codes_by_screening(screening_ids: list[int]) -> dict[int, str]:
    """Subject codes of the enrolled among these screenings (the screening log's links)."""
    rows = db.session.execute(
        sa.select(Subject.screening_id, Subject.code).where(Subject.screening_id.in_(screening_ids))
    )
    return {row.screening_id: row.code for row in rows}


def enrolled_per_site() -> dict[int, int]:
    """Subjects enrolled per site id, all trials."""
    rows = db.session.execute(sa.select(Subject.site_id, sa.func.count()).group_by(Subject.site_id))
    return {site_id: n for site_id, n in rows.tuples()}


def subject_query(actor: Any, filters: dict[str, Any]) -> sa.Select[tuple[Subject]]:
    q = scope_sites(actor, sa.select(Subject), Subject.site_id)
    for field in ("trial_id", "site_id", "cohort_id", "status"):
        if filters.get(field) is not None:
            q = q.where(getattr(Subject, field) == filters[field])
    if filters.get("reconsent_due") is not None:
        q = q.where(Subject.reconsent_due == filters["reconsent_due"])
    # what SubjectOut reads, loaded in a few queries rather than several per subject
    q = q.options(
        selectinload(Subject.site),
        selectinload(Subject.cohort),
        selectinload(Subject.consent_version),
        selectinload(Subject.screening),
        selectinload(Subject.dosing),
    )
    return q.order_by(Subject.code)


def last_clinical_event(subject: Subject) -> tuple[date, str] | None:
    """The latest recorded clinical event (enrolment, consents, dosing, visits done): an exit
    cannot be dated before it."""
    events = [(subject.enrolled_on, "enrolment")]
    events += [
        (c.consented_on, f"consent to version {c.consent_version.version}")
        for c in subject.consents
    ]
    if subject.dosing is not None:
        events.append((site_local_date(subject.site, subject.dosing.dosed_at), "dosing"))
    events += [
        (v.done_on, f"{v.name} done") for v in subject.visits if v.status == "done" and v.done_on
    ]
    return max(events, key=lambda e: e[0]) if events else None


def _check_exit_date(subject: Subject, field: str, on: date, today: date) -> None:
    check_not_future(field, on, today)
    last = last_clinical_event(subject)
    if last is not None and on < last[0]:
        raise Invalid(
            "An exit cannot be dated before the subject's last recorded clinical event.",
            errors={field: [f"Before the {last[1]} on {last[0].isoformat()}."]},
        )


def _cancel_visits_after(subject: Subject, on: date, reason: str, kinds: tuple[str, ...]) -> None:
    """An exit cancels only the visits scheduled after its date; earlier ones can still be
    entered (done or missed) and corrected."""
    for visit in subject.visits:
        if visit.status == "scheduled" and visit.kind in kinds and visit.scheduled_on > on:
            visit.status = "cancelled"
            visit.cancel_reason = reason


ALL_VISIT_KINDS = ("protocol", "ltfu", "rcr")


def exit_date(subject: Subject, kind: str) -> date | None:
    """The date after which no visit of this kind happens: death, loss or full withdrawal
    for every kind; a procedures-only withdrawal for protocol visits (safety follow-up, the
    LTFU contacts and RCR tests, goes on)."""
    dates = []
    if subject.ended_on is not None:
        dates.append(subject.ended_on)
    if subject.withdrawn_on is not None and (
        subject.withdrawal_kind == "full" or kind == "protocol"
    ):
        dates.append(subject.withdrawn_on)
    return min(dates) if dates else None


def withdraw(actor: Any, subject: Subject, data: dict[str, Any], now: datetime) -> Subject:
    """Withdrawal of consent: `full` ends participation; `procedures` stops protocol
    procedures but keeps safety follow-up (LTFU, RCR). Either, before dosing, frees the
    cohort slot and shows as withdrawn. Only visits scheduled after the date are cancelled."""
    require_site_worker(actor, subject.site_id)
    on, kind = data["withdrawn_on"], data["kind"]
    _check_exit_date(subject, "withdrawn_on", on, site_today(subject.site, now))
    if subject.status in ENDED_STATUSES or subject.withdrawal_kind == "full":
        raise Conflict(
            f"Subject {subject.code} has already left ({subject.status.replace('_', ' ')}).",
            title="Subject not active",
        )
    if subject.withdrawal_kind == kind:
        raise Conflict(f"Subject {subject.code} already withdrew from further procedures.")
    with audit.audited(actor, reason=data["reason"], action="subject.withdraw"):
        subject.withdrawn_on = on
        subject.withdrawal_kind = kind
        subject.withdrawal_reason = data["reason"]
        if kind == "full" or subject.dosing is None:
            subject.status = "withdrawn"
        _cancel_visits_after(
            subject, on, "withdrawn", ALL_VISIT_KINDS if kind == "full" else ("protocol",)
        )
    return subject


def end_participation(
    actor: Any, subject: Subject, status: str, on: date, reason: str, now: datetime
) -> Subject:
    """Lost to follow-up, or died (the safety domain calls this for a grade 5 event). A
    death may follow a withdrawal or a loss and is recorded beside it; nothing else follows
    a full withdrawal or a death. Only visits scheduled after the date are cancelled."""
    if status not in ("lost_to_follow_up", "died"):
        raise Invalid(
            "Unknown end of participation.", errors={"status": ["lost_to_follow_up or died."]}
        )
    require_site_worker(actor, subject.site_id)
    _check_exit_date(subject, "on", on, site_today(subject.site, now))
    if subject.status == "died":
        raise Conflict(f"Subject {subject.code} is recorded as deceased.", title="Subject died")
    if status == "lost_to_follow_up":
        if subject.withdrawal_kind == "full":
            raise Conflict(
                f"Subject {subject.code} withdrew on {subject.withdrawn_on}: after a withdrawal "
                "only a death can be recorded.",
                title="Subject withdrawn",
            )
        if subject.status == "lost_to_follow_up":
            raise Conflict(f"Subject {subject.code} is already lost to follow-up.")
    with audit.audited(actor, reason=reason, action=f"subject.{status}"):
        subject.status = status
        subject.ended_on = on
        subject.end_reason = reason
        _cancel_visits_after(subject, on, status, ALL_VISIT_KINDS)
    return subject


def reinstate(actor: Any, subject: Subject, data: dict[str, Any], now: datetime) -> Subject:
    """A subject lost to follow-up is traced again (with a reason): the contacts still to
    come (scheduled on or after the reinstatement date) are scheduled again. An undosed
    subject takes back a slot only if the cohort still has one."""
    require_site_worker(actor, subject.site_id)
    if subject.status != "lost_to_follow_up":
        raise Conflict(
            f"Only a subject lost to follow-up can be reinstated ({subject.code} is "
            f"{subject.status.replace('_', ' ')}).",
            title="Not lost to follow-up",
        )
    on = data["on"]
    check_not_future("on", on, site_today(subject.site, now))
    if subject.ended_on is not None and on < subject.ended_on:
        raise Invalid(
            "Reinstated before the loss was recorded.",
            errors={"on": [f"Before the loss ({subject.ended_on.isoformat()})."]},
        )
    if subject.dosing is None:
        lock_rows(db.session, Cohort, subject.cohort_id)
        if slots_taken(subject.cohort) >= subject.cohort.capacity:
            raise Conflict(
                f"Cohort {subject.cohort.label} is full: the slot was given to another subject.",
                title="Cohort full",
            )
    with audit.audited(actor, reason=data["reason"], action="subject.reinstate"):
        subject.ended_on = None
        subject.end_reason = None
        subject.status = "enrolled" if subject.dosing is None else "dosed"
        for visit in subject.visits:
            if visit.cancel_reason == "lost_to_follow_up" and visit.scheduled_on >= on:
                visit.status = "scheduled"
                visit.cancel_reason = None
        advance_subject(subject)
    return subject


def advance_subject(subject: Subject) -> None:
    """dosed → in follow-up at the first visit done; → completed when the primary-endpoint
    visit is done (long-term follow-up continues)."""
    if subject.status not in ("dosed", "in_follow_up", "completed"):
        return
    done = [v for v in subject.visits if v.status == "done" and v.day > 0]
    if any(v.primary_endpoint for v in subject.visits if v.status == "done"):
        subject.status = "completed"
    elif done:
        subject.status = "in_follow_up"
    else:
        subject.status = "dosed"


def counts_against_capacity(subject: Subject) -> bool:
    """Any dosed subject keeps the slot; any exit before dosing frees it."""
    if subject.dosing is not None:
        return True
    return subject.status not in ENDED_STATUSES and subject.withdrawal_kind is None
