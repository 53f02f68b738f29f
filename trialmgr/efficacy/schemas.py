"""Efficacy: what clients send and get back."""

from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate

from trialmgr.db import IdFilter
from trialmgr.efficacy.models import DIRECTIONS
from trialmgr.enrollment.schemas import reason_field

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$", error="1-20 letters, digits, - or _.")


def _storable(value: Decimal) -> None:
    """The column holds 12 digits before the decimal point."""
    if abs(value) >= 10**12:
        raise ValidationError("Must be less than 10^12 in size.")


def _value(required: bool = False) -> fields.Decimal:
    return fields.Decimal(
        required=required,
        as_string=False,
        allow_nan=False,
        places=6,
        validate=_storable,
        metadata={"description": "In the endpoint's unit."},
    )


class EndpointIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    unit = fields.String(required=True, validate=validate.Length(min=1, max=30))
    direction = fields.String(required=True, validate=validate.OneOf(DIRECTIONS))
    primary = fields.Boolean(load_default=False)


class EndpointOut(Schema):
    id = fields.Integer()
    trial_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    unit = fields.String()
    direction = fields.String()
    primary = fields.Boolean()


class MeasurementIn(Schema):
    subject_code = fields.String(required=True, validate=validate.Length(min=3, max=20))
    endpoint_id = fields.Integer(required=True, strict=True)
    value = _value(required=True)
    measured_on = fields.Date(required=True, metadata={"description": "The site's calendar day."})
    baseline = fields.Boolean(
        load_default=False,
        metadata={"description": "A baseline: on or before the dosing day (day 0)."},
    )
    visit_id = fields.Integer(strict=True, metadata={"description": "The subject's visit."})


class MeasurementPatch(Schema):
    value = _value()
    measured_on = fields.Date()
    baseline = fields.Boolean()
    visit_id = fields.Integer(strict=True, allow_none=True)
    reason = reason_field()


class MeasurementOut(Schema):
    id = fields.Integer()
    subject_code = fields.String()
    trial_id = fields.Integer()
    site_id = fields.Integer()
    cohort_id = fields.Integer()
    endpoint_id = fields.Integer()
    endpoint_code = fields.String()
    unit = fields.String()
    visit_id = fields.Integer(allow_none=True)
    visit = fields.String(allow_none=True)
    value = fields.Float()
    measured_on = fields.Date()
    study_day = fields.Integer(
        allow_none=True, metadata={"description": "Days from dosing (day 0); null if not dosed."}
    )
    baseline = fields.Boolean(metadata={"description": "Flagged as a baseline measurement."})
    baseline_used = fields.Boolean(
        metadata={"description": "The baseline change is computed from (latest pre-dose)."}
    )
    baseline_value = fields.Float(allow_none=True)
    baseline_on = fields.Date(allow_none=True)
    change_from_baseline = fields.Float(allow_none=True)
    percent_change_from_baseline = fields.Float(allow_none=True)
    change_note = fields.String(
        allow_none=True, metadata={"description": "Why a change is missing or incomplete."}
    )


class MeasurementQuery(Schema):
    subject_code = fields.String(validate=validate.Length(max=20))
    trial_id = IdFilter()
    endpoint_id = IdFilter()
    site_id = IdFilter()
    cohort_id = IdFilter()


class SummaryQuery(Schema):
    endpoint_id = IdFilter(
        metadata={"description": "Default: the trial's (first) primary endpoint."}
    )
    site_id = IdFilter()
    cohort_id = IdFilter()


class SummaryRowOut(Schema):
    cohort = fields.String()
    cohort_id = fields.Integer()
    visit = fields.String()
    day = fields.Integer(allow_none=True, metadata={"description": "Study day; null: baseline."})
    n = fields.Integer()
    mean = fields.Float(allow_none=True)
    median = fields.Float(allow_none=True)
    min = fields.Float(allow_none=True)
    max = fields.Float(allow_none=True)
    n_change = fields.Integer()
    mean_change = fields.Float(allow_none=True)
    median_change = fields.Float(allow_none=True)
