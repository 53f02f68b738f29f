"""What clients send and get back for accounts and tokens."""

from __future__ import annotations

import zoneinfo

from marshmallow import Schema, ValidationError, fields, validate, validates

from trialmgr.auth.models import DATE_FORMATS, ROLES


class StrictSchema(Schema):
    """Unknown fields are refused (marshmallow's default, stated for the reader)."""


def _check_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("Unknown time zone.") from exc


class TokenIn(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(max=255))
    password = fields.String(required=True, validate=validate.Length(max=256))
    name = fields.String(validate=validate.Length(max=120))


class TokenOut(Schema):
    id = fields.Integer()
    token = fields.String()
    name = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime()


class TokenInfoOut(Schema):
    id = fields.Integer()
    name = fields.String()
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class UserIn(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=255))
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))
    active = fields.Boolean(load_default=True)
    site_ids = fields.List(fields.Integer(strict=True), load_default=list)


class UserPatch(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    role = fields.String(validate=validate.OneOf(ROLES))
    active = fields.Boolean()
    password = fields.String(load_only=True, validate=validate.Length(max=256))
    site_ids = fields.List(fields.Integer(strict=True))
    unlock = fields.Boolean()
    date_format = fields.String(validate=validate.OneOf(list(DATE_FORMATS)))
    timezone = fields.String(validate=validate.Length(max=64))
    reason = fields.String(validate=validate.Length(max=2000))

    @validates("timezone")
    def _tz(self, value: str, **_: object) -> None:
        _check_timezone(value)


class SignOutIn(StrictSchema):
    """An administrator's "sign out everywhere"; the reason goes in the audit."""

    reason = fields.String(validate=validate.Length(max=2000))


class UserOut(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    active = fields.Boolean()
    site_ids = fields.List(fields.Integer())
    locked_until = fields.DateTime(allow_none=True)
    last_login_at = fields.DateTime(allow_none=True)
    date_format = fields.String()
    timezone = fields.String()
    created_at = fields.DateTime()


class UserQuery(StrictSchema):
    role = fields.String(validate=validate.OneOf(ROLES))
    active = fields.Boolean()
    q = fields.String(validate=validate.Length(max=100))


class ProfileIn(StrictSchema):
    """What a user may change about themselves (the account page)."""

    name = fields.String(validate=validate.Length(min=1, max=120))
    date_format = fields.String(validate=validate.OneOf(list(DATE_FORMATS)))
    timezone = fields.String(validate=validate.Length(max=64))

    @validates("timezone")
    def _tz(self, value: str, **_: object) -> None:
        _check_timezone(value)


class PasswordChangeIn(StrictSchema):
    current_password = fields.String(required=True, validate=validate.Length(max=256))
    new_password = fields.String(required=True, validate=validate.Length(max=256))
