"""Partners, sites and approvals: what clients send and get back."""

from __future__ import annotations

import zoneinfo
from typing import Any

import pycountry
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from trialmgr.partners.models import APPROVAL_KINDS, PARTNER_KINDS, SITE_CODE_PATTERN, SITE_STATUSES


def time_zone(value: str) -> None:
    """An IANA time zone name (Europe/Rome, America/New_York...)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("Not an IANA time zone (e.g. Europe/Rome).") from exc


def country_code(value: str) -> None:
    """ISO 3166-1 alpha-2, upper case (IT, DE, FR...)."""
    if len(value) != 2 or not value.isupper() or pycountry.countries.get(alpha_2=value) is None:
        raise ValidationError("Not an ISO 3166-1 alpha-2 country code (e.g. IT, DE, US).")


class PartnerIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    short_name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    kind = fields.String(required=True, validate=validate.OneOf(PARTNER_KINDS))
    country = fields.String(required=True, validate=country_code)
    contact_email = fields.Email(allow_none=True, validate=validate.Length(max=255))
    website = fields.URL(
        allow_none=True, schemes={"http", "https"}, validate=validate.Length(max=255)
    )
    consortium_role = fields.String(allow_none=True, validate=validate.Length(max=2000))
    active = fields.Boolean(load_default=True)


class PartnerPatch(Schema):
    name = fields.String(validate=validate.Length(min=2, max=200))
    short_name = fields.String(validate=validate.Length(min=1, max=40))
    kind = fields.String(validate=validate.OneOf(PARTNER_KINDS))
    country = fields.String(validate=country_code)
    contact_email = fields.Email(allow_none=True, validate=validate.Length(max=255))
    website = fields.URL(
        allow_none=True, schemes={"http", "https"}, validate=validate.Length(max=255)
    )
    consortium_role = fields.String(allow_none=True, validate=validate.Length(max=2000))
    active = fields.Boolean()
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))


class PartnerOut(Schema):
    id = fields.Integer()
    name = fields.String()
    short_name = fields.String()
    kind = fields.String()
    country = fields.String()
    contact_email = fields.String(allow_none=True)
    website = fields.String(allow_none=True)
    consortium_role = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()
    sites = fields.List(fields.Nested(lambda: SiteBrief()))


class SiteBrief(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    status = fields.String()


class PartnerQuery(Schema):
    q = fields.String(validate=validate.Length(max=100))
    kind = fields.String(validate=validate.OneOf(PARTNER_KINDS))
    country = fields.String(validate=country_code)
    active = fields.Boolean()


class SiteIn(Schema):
    partner_id = fields.Integer(required=True, strict=True)
    code = fields.String(
        required=True,
        validate=validate.Regexp(SITE_CODE_PATTERN, error="2 to 10 characters, A-Z and 0-9 only."),
    )
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    country = fields.String(required=True, validate=country_code)
    principal_investigator = fields.String(allow_none=True, validate=validate.Length(max=120))
    target_enrollment = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=1000)
    )
    timezone = fields.String(load_default="UTC", validate=[validate.Length(max=64), time_zone])


class SitePatch(Schema):
    name = fields.String(validate=validate.Length(min=2, max=200))
    country = fields.String(validate=country_code)
    principal_investigator = fields.String(allow_none=True, validate=validate.Length(max=120))
    target_enrollment = fields.Integer(strict=True, validate=validate.Range(min=0, max=1000))
    timezone = fields.String(validate=[validate.Length(max=64), time_zone])
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))


class ApprovalIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(APPROVAL_KINDS))
    reference = fields.String(required=True, validate=validate.Length(min=1, max=120))
    granted_on = fields.Date(required=True)
    expires_on = fields.Date(allow_none=True)

    @validates_schema
    def _expiry_after_grant(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("expires_on") and data["expires_on"] < data["granted_on"]:
            raise ValidationError("Must be on or after the grant date.", "expires_on")


class ApprovalPatch(Schema):
    reference = fields.String(validate=validate.Length(min=1, max=120))
    expires_on = fields.Date(allow_none=True)
    withdrawn_on = fields.Date(allow_none=True)
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))


class ApprovalOut(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    kind = fields.String()
    reference = fields.String()
    granted_on = fields.Date()
    expires_on = fields.Date(allow_none=True)
    withdrawn_on = fields.Date(allow_none=True)
    withdrawn_reason = fields.String(allow_none=True)
    document_name = fields.String(allow_none=True)
    document_sha256 = fields.String(allow_none=True)
    document_size = fields.Integer(allow_none=True)
    state = fields.String(
        metadata={"description": "current | expiring | expired | withdrawn | future"}
    )
    days_to_expiry = fields.Integer(allow_none=True)


class ActivateIn(Schema):
    activated_on = fields.Date(metadata={"description": "Default today; not in the future."})


class StatusChangeIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))
    on = fields.Date(metadata={"description": "Default today."})


class SiteOut(Schema):
    id = fields.Integer()
    partner_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    country = fields.String()
    timezone = fields.String()
    principal_investigator = fields.String(allow_none=True)
    target_enrollment = fields.Integer()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    activated_on = fields.Date(allow_none=True)
    closed_on = fields.Date(allow_none=True)
    open_for_screening = fields.Boolean()
    missing_approvals = fields.List(fields.String())
    months_open = fields.Float()
    approvals = fields.List(fields.Nested(ApprovalOut))


class SiteQuery(Schema):
    status = fields.String(validate=validate.OneOf(SITE_STATUSES))
    partner_id = fields.Integer()
    country = fields.String(validate=country_code)


class DocumentIn(Schema):
    """Multipart upload: the PDF in `file`."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})

    @validates("file")
    def _present(self, value: Any, **_: Any) -> None:
        if not getattr(value, "filename", None):
            raise ValidationError("Attach a PDF file.")
