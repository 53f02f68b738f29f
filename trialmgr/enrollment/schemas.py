"""Enrolment: what clients send and get back."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from trialmgr.clock import format_local, utcnow
from trialmgr.db import IdFilter, today
from trialmgr.enrollment.models import (
    RCR_RESULTS,
    REVIEW_DECISIONS,
    SUBJECT_STATUSES,
    TRIAL_STATUSES,
    VECTOR_TYPES,
)


def reason_field() -> fields.String:
    """Why a record is changed: kept in the audit trail."""
    return fields.String(required=True, validate=validate.Length(min=3, max=2000))


def _positive_number(value: str) -> None:
    try:
        number = float(value)
    except ValueError as exc:
        raise ValidationError("A number such as 1e13.") from exc
    if not number > 0 or number == float("inf"):
        raise ValidationError("Must be a positive number.")


def _birth_year(value: int) -> None:
    if not 1900 <= value <= today().year:
        raise ValidationError(f"Between 1900 and {today().year}.")


def _orphacodes() -> fields.List:
    return fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1)),
        validate=validate.Length(max=50),
        metadata={"description": "Other ORPHAcodes a screening may carry (e.g. subtypes)."},
    )


def _dlt_window() -> fields.Integer:
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=365),
        metadata={
            "description": "Days of observation after a cohort's last dosing before "
            "`escalate` can be signed."
        },
    )


def _full_cohort() -> fields.Boolean:
    return fields.Boolean(
        metadata={"description": "`escalate` needs every slot of the cohort dosed."}
    )


class TrialIn(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9-]{2,20}$"))
    title = fields.String(required=True, validate=validate.Length(min=3, max=300))
    phase = fields.String(validate=validate.Length(max=20))
    orphacode = fields.Integer(strict=True, validate=validate.Range(min=1))
    indication = fields.String(validate=validate.Length(max=200))
    vector_type = fields.String(required=True, validate=validate.OneOf(VECTOR_TYPES))
    stagger_days = fields.Integer(
        load_default=14, strict=True, validate=validate.Range(min=0, max=365)
    )
    ltfu_years = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=30),
        metadata={"description": "Default from the vector type; required for `other`."},
    )
    accepted_orphacodes = _orphacodes()
    escalation_requires_full_cohort = _full_cohort()
    dlt_window_days = _dlt_window()


class TrialPatch(Schema):
    """Title, phase and indication any time; the design fields only during setup (after
    opening: `POST /trials/{id}/amendments`). Status: open, closed (to enrolment), ended."""

    title = fields.String(validate=validate.Length(min=3, max=300))
    phase = fields.String(validate=validate.Length(max=20))
    indication = fields.String(validate=validate.Length(max=200))
    stagger_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    ltfu_years = fields.Integer(strict=True, validate=validate.Range(min=0, max=30))
    accepted_orphacodes = _orphacodes()
    escalation_requires_full_cohort = _full_cohort()
    dlt_window_days = _dlt_window()
    status = fields.String(validate=validate.OneOf(["open", "closed", "ended"]))
    public_summary = fields.Boolean(
        metadata={
            "description": "Publish the aggregate summary at /public/trials/{code} (no login)."
        }
    )
    reason = reason_field()


class TrialQuery(Schema):
    status = fields.String(validate=validate.OneOf(TRIAL_STATUSES))


class CohortIn(Schema):
    label = fields.String(required=True, validate=validate.Length(min=1, max=20))
    dose = fields.String(required=True, validate=[validate.Length(max=40), _positive_number])
    dose_unit = fields.String(required=True, validate=validate.Length(min=1, max=20))
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100))
    sequence = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100))


class CohortOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    label = fields.String()
    dose = fields.String()
    dose_unit = fields.String()
    capacity = fields.Integer()
    sequence = fields.Integer()
    status = fields.String()


class CriterionIn(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9]{1,10}$"))
    kind = fields.String(required=True, validate=validate.OneOf(["inclusion", "exclusion"]))
    text = fields.String(required=True, validate=validate.Length(min=3, max=2000))


class CriterionOut(CriterionIn):
    id = fields.Integer()
    sequence = fields.Integer()


class ConsentSiteApprovalIn(Schema):
    site_id = fields.Integer(required=True, strict=True)
    approved_on = fields.Date(required=True)
    language = fields.String(
        validate=validate.Length(min=2, max=35), metadata={"description": "e.g. it, fr, de"}
    )


class ConsentSiteApprovalOut(ConsentSiteApprovalIn):
    id = fields.Integer()
    consent_version_id = fields.Integer()
    site_code = fields.Function(lambda a: _site_code(a.site_id))


def _site_code(site_id: int) -> str | None:
    from trialmgr.extensions import db
    from trialmgr.partners.models import Site

    site = db.session.get(Site, site_id)
    return site.code if site else None


class ConsentVersionIn(Schema):
    version = fields.String(required=True, validate=validate.Length(min=1, max=20))
    approved_on = fields.Date(
        metadata={
            "description": "Approved at every site from this date (optional when "
            "`site_approvals` are given)."
        }
    )
    reconsent_required = fields.Boolean(load_default=False)
    site_approvals = fields.List(
        fields.Nested(ConsentSiteApprovalIn),
        metadata={
            "description": "Per-site ethics approvals: a site uses the version from "
            "its own approval date."
        },
    )


class ConsentVersionOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    version = fields.String()
    approved_on = fields.Date(allow_none=True)
    reconsent_required = fields.Boolean()
    site_approvals = fields.List(fields.Nested(ConsentSiteApprovalOut))


class VisitDefinitionIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    day = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=-365, max=36500),
        metadata={"description": "Study day: dosing is day 0, negative days are pre-dose."},
    )
    window_before = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=365)
    )
    window_after = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=365)
    )
    primary_endpoint = fields.Boolean(load_default=False)


class VisitDefinitionOut(VisitDefinitionIn):
    id = fields.Integer()
    trial_id = fields.Integer()
    active = fields.Boolean(metadata={"description": "False once an amendment removed it."})


class CohortPatch(Schema):
    label = fields.String(validate=validate.Length(min=1, max=20))
    dose = fields.String(validate=[validate.Length(max=40), _positive_number])
    dose_unit = fields.String(validate=validate.Length(min=1, max=20))
    capacity = fields.Integer(strict=True, validate=validate.Range(min=1, max=100))
    sequence = fields.Integer(strict=True, validate=validate.Range(min=1, max=100))
    reason = fields.String(validate=validate.Length(min=3, max=2000))


class CriterionPatch(Schema):
    code = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9]{1,10}$"))
    kind = fields.String(validate=validate.OneOf(["inclusion", "exclusion"]))
    text = fields.String(validate=validate.Length(min=3, max=2000))
    reason = fields.String(validate=validate.Length(min=3, max=2000))


class VisitDefinitionPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=60))
    day = fields.Integer(strict=True, validate=validate.Range(min=-365, max=36500))
    window_before = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    window_after = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    primary_endpoint = fields.Boolean()
    reason = fields.String(validate=validate.Length(min=3, max=2000))


class RemovalIn(Schema):
    reason = fields.String(validate=validate.Length(min=3, max=2000))


class _VisitChange(VisitDefinitionPatch):
    id = fields.Integer(required=True, strict=True)


class _CriterionChange(CriterionPatch):
    id = fields.Integer(required=True, strict=True)


class _VisitChanges(Schema):
    add = fields.List(fields.Nested(VisitDefinitionIn), load_default=list)
    change = fields.List(fields.Nested(_VisitChange(exclude=("reason",))), load_default=list)
    remove = fields.List(fields.Integer(strict=True), load_default=list)


class _CriterionChanges(Schema):
    add = fields.List(fields.Nested(CriterionIn), load_default=list)
    change = fields.List(fields.Nested(_CriterionChange(exclude=("reason",))), load_default=list)


class _CohortChanges(Schema):
    add = fields.List(fields.Nested(CohortIn), load_default=list)


class AmendmentIn(Schema):
    version = fields.String(required=True, validate=validate.Length(min=1, max=20))
    effective_on = fields.Date(required=True)
    reason = reason_field()
    stagger_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    ltfu_years = fields.Integer(strict=True, validate=validate.Range(min=0, max=30))
    accepted_orphacodes = _orphacodes()
    escalation_requires_full_cohort = _full_cohort()
    dlt_window_days = _dlt_window()
    visit_definitions = fields.Nested(_VisitChanges)
    criteria = fields.Nested(_CriterionChanges)
    cohorts = fields.Nested(_CohortChanges)


class AmendmentOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    version = fields.String()
    effective_on = fields.Date()
    reason = fields.String()
    recorded_at = fields.DateTime()
    recorded_by = fields.String()
    changes = fields.Dict()
    rescheduled = fields.List(
        fields.String(), metadata={"description": "Subjects whose future visits changed."}
    )


class ReadinessQuery(Schema):
    cohort_id = IdFilter(required=True)


class ReadinessOut(Schema):
    cohort_id = fields.Integer()
    cohort = fields.String()
    capacity = fields.Integer()
    dosed = fields.Integer()
    last_dosed_at = fields.DateTime(allow_none=True)
    days_since_last_dosing = fields.Integer(allow_none=True)
    deviations = fields.Integer()
    requires_full_cohort = fields.Boolean()
    dlt_window_days = fields.Integer(allow_none=True)
    ready = fields.Boolean()
    blockers = fields.List(fields.String())


class TrialOut(Schema):
    id = fields.Integer()
    code = fields.String()
    title = fields.String()
    phase = fields.String(allow_none=True)
    orphacode = fields.Integer(allow_none=True)
    indication = fields.String(allow_none=True)
    vector_type = fields.String()
    ltfu_years = fields.Integer()
    stagger_days = fields.Integer()
    status = fields.String()
    paused_reason = fields.String(allow_none=True)
    accepted_orphacodes = fields.List(fields.Integer())
    escalation_requires_full_cohort = fields.Boolean()
    dlt_window_days = fields.Integer(allow_none=True)
    public_summary = fields.Boolean()
    cohorts = fields.List(fields.Nested(CohortOut))
    criteria = fields.List(fields.Nested(CriterionOut))
    consent_versions = fields.List(fields.Nested(ConsentVersionOut))
    visit_definitions = fields.List(fields.Nested(VisitDefinitionOut))


class SafetyReviewIn(Schema):
    cohort_id = fields.Integer(required=True, strict=True)
    decision = fields.String(required=True, validate=validate.OneOf(REVIEW_DECISIONS))
    rationale = fields.String(required=True, validate=validate.Length(min=3, max=4000))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))
    meaning = fields.String(validate=validate.Length(max=200))


class SafetyReviewOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    cohort_id = fields.Integer()
    decision = fields.String()
    rationale = fields.String()
    signed_by = fields.String()
    signed_at = fields.DateTime()
    signature_meaning = fields.String()


class PauseIn(Schema):
    reason = reason_field()


class ResumeIn(Schema):
    reason = reason_field()
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))


class PauseOut(Schema):
    id = fields.Integer()
    paused_at = fields.DateTime()
    reason = fields.String()
    source = fields.String()
    paused_by = fields.String()
    resumed_at = fields.DateTime(allow_none=True)
    resumed_by = fields.String(allow_none=True)
    resume_reason = fields.String(allow_none=True)


def _consented_on() -> fields.Date:
    return fields.Date(
        metadata={
            "description": "Written consent recorded at screening (with "
            "`consent_version_id`); a subject who consented and failed screening counts as "
            "consented."
        }
    )


class ScreeningIn(Schema):
    trial_id = fields.Integer(required=True, strict=True)
    site_id = fields.Integer(required=True, strict=True)
    screened_on = fields.Date(required=True)
    orphacode = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    birth_year = fields.Integer(required=True, strict=True, validate=_birth_year)
    sex = fields.String(required=True, validate=validate.OneOf(["F", "M", "U"]))
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(max=10)), values=fields.Boolean()
    )
    outcome = fields.String(validate=validate.OneOf(["eligible", "screen_failed", "declined"]))
    fail_reason = fields.String(validate=validate.Length(max=2000))
    consented_on = _consented_on()
    consent_version_id = fields.Integer(strict=True)


class ScreeningPatch(Schema):
    outcome = fields.String(validate=validate.OneOf(["eligible", "screen_failed", "declined"]))
    fail_reason = fields.String(validate=validate.Length(max=2000))
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(max=10)), values=fields.Boolean()
    )
    consented_on = _consented_on()
    consent_version_id = fields.Integer(strict=True)
    reason = reason_field()


class ScreeningOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    site_id = fields.Integer()
    site_code = fields.Function(lambda s: s.site.code)
    number = fields.Integer()
    screened_on = fields.Date()
    orphacode = fields.Integer()
    birth_year = fields.Integer()
    sex = fields.String()
    answers = fields.Dict()
    outcome = fields.String()
    failed_criteria = fields.List(fields.String())
    fail_reason = fields.String(allow_none=True)
    consented_on = fields.Date(allow_none=True)
    consent_version_id = fields.Integer(allow_none=True)


class ScreeningQuery(Schema):
    trial_id = IdFilter()
    site_id = IdFilter()
    outcome = fields.String(
        validate=validate.OneOf(["pending", "eligible", "screen_failed", "declined"])
    )
    since = fields.Date()
    until = fields.Date()


class EnrolIn(Schema):
    screening_id = fields.Integer(required=True, strict=True)
    cohort_id = fields.Integer(required=True, strict=True)
    consent_version_id = fields.Integer(
        strict=True, metadata={"description": "Optional when the screening holds the consent."}
    )
    consented_on = fields.Date(
        metadata={"description": "Optional when the screening holds the consent."}
    )
    enrolled_on = fields.Date(metadata={"description": "Default: the site's today."})


class DosingIn(Schema):
    dosed_at = fields.AwareDateTime(
        required=True, metadata={"description": "With a time zone, e.g. ...Z"}
    )
    dose = fields.String(required=True, validate=[validate.Length(max=40), _positive_number])
    dose_unit = fields.String(validate=validate.Length(min=1, max=20))
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=60))
    confirm_dose_deviation = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Needed to record a dose more than 10 % from the cohort's; "
            "it is then a dosing-error deviation."
        },
    )

    @validates("dosed_at")
    def _utc(self, value: Any, **_: Any) -> None:
        if value.tzinfo is None:
            raise ValidationError("Give a time zone.")


class DosingOut(Schema):
    id = fields.Integer()
    subject_code = fields.Function(lambda d: d.subject.code)
    cohort_id = fields.Integer()
    dosed_at = fields.DateTime()
    dosed_at_local = fields.Function(
        lambda d: format_local(d.dosed_at, d.subject.site.timezone),
        metadata={"description": "In the site's zone, e.g. 2026-02-10 10:00 CET (Europe/Rome)."},
    )
    dose = fields.String()
    dose_unit = fields.String()
    lot_number = fields.String()


class SubjectOut(Schema):
    code = fields.String()
    trial_id = fields.Integer()
    site_id = fields.Integer()
    site_code = fields.Function(lambda s: s.site.code)
    cohort_id = fields.Integer()
    cohort_label = fields.Function(lambda s: s.cohort.label)
    screening_id = fields.Integer()
    status = fields.String()
    enrolled_on = fields.Date()
    consent_version = fields.Function(lambda s: s.consent_version.version)
    consent_version_id = fields.Integer()
    consented_on = fields.Date()
    reconsent_due = fields.Boolean()
    withdrawn_on = fields.Date(allow_none=True)
    withdrawal_kind = fields.String(allow_none=True)
    withdrawal_reason = fields.String(allow_none=True)
    ended_on = fields.Date(allow_none=True)
    end_reason = fields.String(allow_none=True)
    dosing = fields.Nested(DosingOut, allow_none=True)
    birth_year = fields.Function(lambda s: s.screening.birth_year)
    sex = fields.Function(lambda s: s.screening.sex)


class SubjectQuery(Schema):
    trial_id = IdFilter()
    site_id = IdFilter()
    cohort_id = IdFilter()
    status = fields.String(validate=validate.OneOf(SUBJECT_STATUSES))
    reconsent_due = fields.Boolean()


class ConsentIn(Schema):
    consent_version_id = fields.Integer(required=True, strict=True)
    consented_on = fields.Date(required=True)


class ConsentOut(Schema):
    id = fields.Integer()
    consent_version_id = fields.Integer()
    version = fields.Function(lambda c: c.consent_version.version)
    consented_on = fields.Date()


class WithdrawalIn(Schema):
    withdrawn_on = fields.Date(required=True)
    kind = fields.String(
        load_default="full",
        validate=validate.OneOf(["full", "procedures"]),
        metadata={"description": "full, or procedures (safety follow-up continues)"},
    )
    reason = reason_field()


class EndIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["lost_to_follow_up", "died"]))
    on = fields.Date(required=True)
    reason = reason_field()


class ReinstateIn(Schema):
    on = fields.Date(required=True, metadata={"description": "When the subject was traced."})
    reason = reason_field()


class VisitOut(Schema):
    id = fields.Integer()
    subject_code = fields.Function(lambda v: v.subject.code)
    name = fields.String()
    kind = fields.String()
    day = fields.Integer()
    scheduled_on = fields.Date()
    window_start = fields.Date()
    window_end = fields.Date()
    status = fields.String()
    state = fields.Method("_state")
    done_on = fields.Date(allow_none=True)
    answers = fields.Dict(allow_none=True)
    notes = fields.String(allow_none=True)
    primary_endpoint = fields.Boolean()
    result = fields.String(allow_none=True, metadata={"description": "RCR tests."})
    positive_rcr = fields.Function(
        lambda v: v.kind == "rcr" and v.result == "positive",
        metadata={"description": "A positive RCR result: a serious adverse event to report."},
    )
    cancel_reason = fields.String(allow_none=True)

    def _state(self, visit: Any) -> str:
        from trialmgr.enrollment.services.visits import visit_state
        from trialmgr.partners.services.sites import site_today

        return visit_state(visit, site_today(visit.subject.site, utcnow()))


class VisitPatch(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["done", "missed"]))
    done_on = fields.Date()
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(max=40)), values=fields.Boolean()
    )
    notes = fields.String(validate=validate.Length(max=4000))
    result = fields.String(
        validate=validate.OneOf(RCR_RESULTS), metadata={"description": "RCR tests only."}
    )
    reason = reason_field()


class VisitDueQuery(Schema):
    days = fields.Integer(load_default=14, validate=validate.Range(min=0, max=365))


class DeviationOut(Schema):
    id = fields.Integer()
    visit_id = fields.Integer(allow_none=True)
    kind = fields.String()
    description = fields.String()
    occurred_on = fields.Date()
    voided_at = fields.DateTime(allow_none=True)
    void_reason = fields.String(allow_none=True)
