"""Partners, sites and approvals: what clients send and get back."""

from __future__ import annotations

import zoneinfo
from typing import Any

import pycountry
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from trialmgr.db import IdFilter
from trialmgr.partners.models import (
    APPROVAL_KINDS,
    PARTNER_KINDS,
    SITE_CODE_PATTERN,
    SITE_STATUSES,
    STATUS_CHANGES,
)
from trialmgr.partners.zones import known_zones

TIMEZONE_DESCRIPTION = (
    "IANA time zone of the site (e.g. Europe/Rome). The site's today and every clinical date "
    "at the site (not in the future, approval expiry, study days) are its local calendar dates."
)


def time_zone(value: str) -> None:
    """An IANA time zone name (Europe/Rome, America/New_York...), as zoneinfo knows it."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("Not an IANA time zone (e.g. Europe/Rome).") from exc
    if value not in known_zones():
        raise ValidationError("Not an IANA time zone (e.g. Europe/Rome).")


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
    timezone = fields.String(
        required=True,
        validate=[validate.Length(max=64), time_zone],
        metadata={"description": f"Required. {TIMEZONE_DESCRIPTION}"},
    )


class SitePatch(Schema):
    name = fields.String(validate=validate.Length(min=2, max=200))
    country = fields.String(validate=country_code)
    principal_investigator = fields.String(allow_none=True, validate=validate.Length(max=120))
    target_enrollment = fields.Integer(strict=True, validate=validate.Range(min=0, max=1000))
    timezone = fields.String(
        validate=[validate.Length(max=64), time_zone],
        metadata={"description": TIMEZONE_DESCRIPTION},
    )
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))


class ApprovalIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(APPROVAL_KINDS))
    reference = fields.String(required=True, validate=validate.Length(min=1, max=120))
    granted_on = fields.Date(
        required=True,
        metadata={
            "description": "Not in the future at the site. Per kind, the newest grant (on or "
            "before a day) is the record in force that day: a renewal supersedes the older letter."
        },
    )
    expires_on = fields.Date(allow_none=True)

    @validates_schema
    def _expiry_after_grant(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("expires_on") and data["expires_on"] < data["granted_on"]:
            raise ValidationError("Must be on or after the grant date.", "expires_on")


class ApprovalPatch(Schema):
    reference = fields.String(validate=validate.Length(min=1, max=120))
    expires_on = fields.Date(allow_none=True)
    withdrawn_on = fields.Date(
        allow_none=True,
        metadata={
            "description": "Withdrawal or suspension by the committee (not before the grant, not "
            "in the future at the site). If this is the record in force, the site is closed to "
            "new clinical events from that date, even if an older letter has not expired."
        },
    )
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
        metadata={
            "description": "current | expiring | expired | withdrawn | future, judged on the "
            "site's today (local date); expiring: expires within 30 days"
        }
    )
    days_to_expiry = fields.Integer(
        allow_none=True, metadata={"description": "From the site's today; None: does not lapse."}
    )
    in_force = fields.Boolean(
        metadata={
            "description": "This is the record of its kind in force on the site's today: the "
            "newest granted on or before it (ties: the later id). The kind is current only if "
            "this record is current; older records of the kind are superseded."
        }
    )


class ActivateIn(Schema):
    activated_on = fields.Date(
        metadata={
            "description": "Default: the site's today; not in the future. Every approval in force "
            "must be current on this date and today. On a suspended site this reactivates it, "
            "from a date not before the suspension."
        }
    )
    reason = fields.String(
        validate=validate.Length(min=3, max=2000),
        metadata={
            "description": "Optional; recorded in the status history (e.g. why reactivated)."
        },
    )


class StatusChangeIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))
    on = fields.Date(
        metadata={
            "description": "Default: the site's today; not in the future, not before the site's "
            "last status change. Clinical events dated from this day are refused; events dated "
            "before it are judged against the site as it was then."
        }
    )


class SiteStatusChangeOut(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    change = fields.String(metadata={"description": " | ".join(STATUS_CHANGES)})
    status = fields.String(
        metadata={"description": "The site's status from `on` until the next change."}
    )
    on = fields.Date(metadata={"description": "A day at the site (its local calendar)."})
    reason = fields.String(allow_none=True)
    recorded_at = fields.DateTime()
    recorded_by = fields.String()


class SiteOut(Schema):
    id = fields.Integer()
    partner_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    country = fields.String()
    timezone = fields.String(metadata={"description": TIMEZONE_DESCRIPTION})
    principal_investigator = fields.String(allow_none=True)
    target_enrollment = fields.Integer()
    status = fields.String(
        metadata={"description": "pending | active | suspended | closed (today)"}
    )
    status_reason = fields.String(allow_none=True)
    status_since = fields.Date(
        allow_none=True,
        metadata={"description": "Date of the latest status change (None: pending)."},
    )
    activated_on = fields.Date(allow_none=True, metadata={"description": "First activation."})
    closed_on = fields.Date(allow_none=True)
    today = fields.Date(
        metadata={"description": "The site's local calendar date now (its time zone)."}
    )
    open_for_screening = fields.Boolean(
        metadata={
            "description": "Active today by the status history, with every approval in force "
            "current today."
        }
    )
    missing_approvals = fields.List(
        fields.String(),
        metadata={"description": "Kinds whose record in force today is missing or not current."},
    )
    months_open = fields.Float(
        metadata={
            "description": "Site-months open up to today: only days active with every approval "
            "current (suspensions and approval lapses do not count)."
        }
    )
    approvals = fields.List(fields.Nested(ApprovalOut))


class SiteQuery(Schema):
    status = fields.String(validate=validate.OneOf(SITE_STATUSES))
    partner_id = IdFilter()
    country = fields.String(validate=country_code)


class DocumentIn(Schema):
    """Multipart upload: the PDF in `file`."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})

    @validates("file")
    def _present(self, value: Any, **_: Any) -> None:
        if not getattr(value, "filename", None):
            raise ValidationError("Attach a PDF file.")
