"""Enrolment: what clients send and get back."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from trialmgr.db import today
from trialmgr.enrollment.models import REVIEW_DECISIONS, SUBJECT_STATUSES, VECTOR_TYPES


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
    ltfu_years = fields.Integer(strict=True, validate=validate.Range(min=0, max=30))


class TrialPatch(Schema):
    title = fields.String(validate=validate.Length(min=3, max=300))
    phase = fields.String(validate=validate.Length(max=20))
    indication = fields.String(validate=validate.Length(max=200))
    stagger_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))
    ltfu_years = fields.Integer(strict=True, validate=validate.Range(min=0, max=30))
    status = fields.String(validate=validate.OneOf(["open", "closed"]))
    reason = reason_field()


class TrialQuery(Schema):
    status = fields.String(validate=validate.OneOf(["setup", "open", "paused", "closed"]))


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


class ConsentVersionIn(Schema):
    version = fields.String(required=True, validate=validate.Length(min=1, max=20))
    approved_on = fields.Date(required=True)
    reconsent_required = fields.Boolean(load_default=False)


class ConsentVersionOut(ConsentVersionIn):
    id = fields.Integer()
    trial_id = fields.Integer()


class VisitDefinitionIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    day = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=36500))
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


class ScreeningPatch(Schema):
    outcome = fields.String(validate=validate.OneOf(["eligible", "screen_failed", "declined"]))
    fail_reason = fields.String(validate=validate.Length(max=2000))
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(max=10)), values=fields.Boolean()
    )
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


class ScreeningQuery(Schema):
    trial_id = fields.Integer()
    site_id = fields.Integer()
    outcome = fields.String(
        validate=validate.OneOf(["pending", "eligible", "screen_failed", "declined"])
    )
    since = fields.Date()
    until = fields.Date()


class EnrolIn(Schema):
    screening_id = fields.Integer(required=True, strict=True)
    cohort_id = fields.Integer(required=True, strict=True)
    consent_version_id = fields.Integer(required=True, strict=True)
    consented_on = fields.Date(required=True)
    enrolled_on = fields.Date()


class DosingIn(Schema):
    dosed_at = fields.AwareDateTime(
        required=True, metadata={"description": "With a time zone, e.g. ...Z"}
    )
    dose = fields.String(required=True, validate=[validate.Length(max=40), _positive_number])
    dose_unit = fields.String(validate=validate.Length(min=1, max=20))
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=60))

    @validates("dosed_at")
    def _utc(self, value: Any, **_: Any) -> None:
        if value.tzinfo is None:
            raise ValidationError("Give a time zone.")


class DosingOut(Schema):
    id = fields.Integer()
    subject_code = fields.Function(lambda d: d.subject.code)
    cohort_id = fields.Integer()
    dosed_at = fields.DateTime()
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
    dosing = fields.Nested(DosingOut, allow_none=True)
    birth_year = fields.Function(lambda s: s.screening.birth_year)
    sex = fields.Function(lambda s: s.screening.sex)


class SubjectQuery(Schema):
    trial_id = fields.Integer()
    site_id = fields.Integer()
    cohort_id = fields.Integer()
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

    def _state(self, visit: Any) -> str:
        from trialmgr.enrollment.services.visits import visit_state

        return visit_state(visit, today())


class VisitPatch(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["done", "missed"]))
    done_on = fields.Date()
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(max=40)), values=fields.Boolean()
    )
    notes = fields.String(validate=validate.Length(max=4000))
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
