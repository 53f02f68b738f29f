from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, fields, validate


class AuditQuery(Schema):
    entity = fields.String(validate=validate.Length(max=64))
    entity_id = fields.String(validate=validate.Length(max=64))
    actor = fields.String(validate=validate.Length(max=255))
    since = fields.AwareDateTime(default_timezone=UTC)
    until = fields.AwareDateTime(default_timezone=UTC)


class AuditEventOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    actor_id = fields.Integer(allow_none=True)
    action = fields.String()
    entity = fields.String()
    entity_id = fields.String(allow_none=True)
    changes = fields.Dict()
    reason = fields.String(allow_none=True)
    prev_hash = fields.String()
    hash = fields.String()


class VerifyOut(Schema):
    valid = fields.Boolean()
    checked = fields.Integer()
    head = fields.String()
    first_bad = fields.Dict()
    from_checkpoint = fields.Integer(
        allow_none=True,
        metadata={"description": "Row id of the last full verification the walk started from."},
    )
