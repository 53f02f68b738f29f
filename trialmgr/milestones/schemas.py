"""Feasibility: what clients send and get back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, fields, validate

from trialmgr.db import IdFilter
from trialmgr.enrollment.schemas import reason_field
from trialmgr.milestones.models import METRICS, MILESTONE_KINDS


def _name() -> fields.String:
    return fields.String(validate=validate.Length(min=3, max=200))


def _notes() -> fields.String:
    return fields.String(allow_none=True, validate=validate.Length(max=4000))


class MilestoneIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=3, max=200))
    planned_on = fields.Date(required=True)
    kind = fields.String(
        validate=validate.OneOf(MILESTONE_KINDS),
        metadata={
            "description": "Default: the kind whose standard name this is (e.g. "
            "'First subject dosed'), else other. first_site_activated, "
            "first_subject_screened, first_subject_dosed, cohort_complete and "
            "last_subject_dosed complete themselves from the records."
        },
    )
    site_id = fields.Integer(strict=True, metadata={"description": "A site's own milestone."})
    cohort_id = fields.Integer(
        strict=True, metadata={"description": "Required for cohort_complete, only there."}
    )
    achieved_on = fields.Date(metadata={"description": "Only for milestones typed in."})
    notes = _notes()


class MilestonePatch(Schema):
    name = _name()
    planned_on = fields.Date()
    achieved_on = fields.Date(allow_none=True)
    notes = _notes()
    reason = reason_field()


class MilestoneOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    kind = fields.String()
    kind_label = fields.String()
    name = fields.String()
    site_id = fields.Integer(allow_none=True)
    site_code = fields.String(allow_none=True)
    cohort_id = fields.Integer(allow_none=True)
    cohort_label = fields.String(allow_none=True)
    planned_on = fields.Date()
    achieved_on = fields.Date(allow_none=True)
    automatic = fields.Boolean(metadata={"description": "Completes itself from the records."})
    achieved_from = fields.String(allow_none=True, metadata={"description": "records or entry"})
    status = fields.String(metadata={"description": "done, late, at_risk or on_track"})
    days_after_plan = fields.Integer()
    notes = fields.String(allow_none=True)
    as_of = fields.Date(metadata={"description": "The day the status is judged on."})


class AsOfQuery(Schema):
    as_of = fields.Date(metadata={"description": "Review date: only records dated by then."})


class FeasibilityQuery(AsOfQuery):
    site_id = IdFilter(metadata={"description": "One site (coordinators: their own)."})


class ConsortQuery(FeasibilityQuery):
    cohort_id = IdFilter()


class DecimalNumber(fields.Float):
    """A JSON number loaded as the decimal it was written as (0.7 is Decimal("0.7"), not
    the nearest binary float), so that a value exactly at a target compares equal."""

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> Decimal:
        return Decimal(repr(super()._deserialize(value, attr, data, **kwargs)))


def _target(**kw: Any) -> DecimalNumber:
    return DecimalNumber(
        **kw,
        allow_nan=False,
        validate=validate.Range(min=0.000001, max=100000),
        metadata={
            "description": "Proportions: in (0, 1]; screened per enrolled: at least 1 (lower "
            "is better); recruitment rate: subjects per site-month."
        },
    )


def _amber_fraction(**kw: Any) -> DecimalNumber:
    return DecimalNumber(
        **kw,
        allow_nan=False,
        validate=validate.Range(min=0.000001, max=1),
        metadata={"description": "Amber from this fraction of the target (default 0.5)."},
    )


class ProgressionCriterionIn(Schema):
    metric = fields.String(required=True, validate=validate.OneOf(METRICS))
    target = _target(required=True)
    amber_fraction = _amber_fraction(load_default=Decimal("0.5"))
    notes = _notes()


class ProgressionCriterionPatch(Schema):
    target = _target()
    amber_fraction = _amber_fraction()
    notes = _notes()
    reason = reason_field()


class ProgressionCriterionOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    metric = fields.String()
    target = fields.Float()
    amber_fraction = fields.Float()
    notes = fields.String(allow_none=True)


def _number(description: str) -> fields.Raw:
    """Counts stay integers in the JSON; site-months are decimals."""
    return fields.Raw(metadata={"type": "number", "description": description})


class MetricOut(Schema):
    metric = fields.String()
    label = fields.String()
    kind = fields.String(metadata={"description": "proportion, rate or ratio"})
    unit = fields.String(allow_none=True)
    direction = fields.String()
    numerator = _number("A count (site-months for the rate's denominator).")
    denominator = _number("A count (site-months for the rate's denominator).")
    value = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)


class JudgedCriterionOut(Schema):
    id = fields.Integer()
    metric = fields.String()
    label = fields.String()
    kind = fields.String()
    target = fields.Float()
    amber_fraction = fields.Float()
    amber_threshold = fields.Float()
    direction = fields.String()
    notes = fields.String(allow_none=True)
    value = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)
    light = fields.String(
        allow_none=True, metadata={"description": "green, amber, red; null: no data"}
    )


class SiteFeasibilityOut(Schema):
    site_id = fields.Integer()
    site_code = fields.String()
    site_name = fields.String()
    country = fields.String()
    target_enrollment = fields.Integer()
    enrolled = fields.Integer()
    percent_of_target = fields.Float(allow_none=True)
    months_open = fields.Float()
    metrics = fields.List(fields.Nested(MetricOut))
    lights = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))


class TrendPointOut(Schema):
    as_of = fields.Date()
    values = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    numerators = fields.Dict(keys=fields.String(), values=_number("Per metric."))
    denominators = fields.Dict(keys=fields.String(), values=_number("Per metric."))


class FeasibilityOut(Schema):
    trial_id = fields.Integer()
    trial_code = fields.String()
    as_of = fields.Date()
    site_id = fields.Integer(allow_none=True)
    metrics = fields.List(fields.Nested(MetricOut))
    criteria = fields.List(fields.Nested(JudgedCriterionOut))
    decision = fields.String(allow_none=True, metadata={"description": "proceed, amend, stop"})
    sites = fields.List(fields.Nested(SiteFeasibilityOut))
    trend = fields.List(fields.Nested(TrendPointOut))


class ReasonCountOut(Schema):
    reason = fields.String()
    label = fields.String()
    count = fields.Integer()


class WithdrawalCountOut(Schema):
    kind = fields.String()
    reason = fields.String()
    count = fields.Integer()


class ExitsOut(Schema):
    withdrawn = fields.Integer()
    lost = fields.Integer()
    died = fields.Integer()


class ConsortOut(Schema):
    trial_id = fields.Integer()
    trial_code = fields.String()
    as_of = fields.Date()
    site_id = fields.Integer(allow_none=True)
    cohort_id = fields.Integer(allow_none=True)
    cohort_label = fields.String(allow_none=True)
    approached = fields.Integer(allow_none=True)
    in_screening = fields.Integer(allow_none=True)
    screened = fields.Integer(allow_none=True)
    screen_failed = fields.Integer(allow_none=True)
    screen_failed_reasons = fields.List(fields.Nested(ReasonCountOut), allow_none=True)
    eligible = fields.Integer(allow_none=True)
    declined = fields.Integer(allow_none=True)
    declined_reasons = fields.List(fields.Nested(ReasonCountOut), allow_none=True)
    consented = fields.Integer(allow_none=True)
    consented_then_screen_failed = fields.Integer(allow_none=True)
    eligible_not_enrolled = fields.Integer(allow_none=True)
    enrolled = fields.Integer()
    left_before_dosing = fields.Nested(ExitsOut)
    awaiting_dosing = fields.Integer()
    dosed = fields.Integer()
    left_after_dosing = fields.Nested(ExitsOut)
    in_follow_up = fields.Integer()
    completed = fields.Integer(metadata={"description": "Completed primary follow-up."})
    withdrawn = fields.Integer()
    withdrawn_reasons = fields.List(fields.Nested(WithdrawalCountOut))
    lost = fields.Integer()
    died = fields.Integer()


def _count() -> fields.Raw:
    return fields.Raw(metadata={"description": 'A count, or "<5" below 5.'})


class PublicSiteOut(Schema):
    name = fields.String()
    country = fields.String()
    enrolled = fields.Integer()


class PublicSummaryOut(Schema):
    code = fields.String()
    title = fields.String()
    indication = fields.String(allow_none=True)
    phase = fields.String(allow_none=True)
    status = fields.String()
    status_label = fields.String()
    as_of = fields.Date()
    active_sites = _count()
    countries = _count()
    enrolled = _count()
    planned = _count()
    percent_enrolled = fields.Integer(allow_none=True)
    sites = fields.List(fields.Nested(PublicSiteOut))
    note = fields.String()
