"""The audit trail page: filters, CSV export, chain verification."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from marshmallow import ValidationError, fields, validate

from trialmgr.audit import readable, services
from trialmgr.audit.export import readable_audit_csv
from trialmgr.audit.models import AuditEvent
from trialmgr.audit.schemas import AuditQuery
from trialmgr.auth.models import ADMIN, CONSORTIUM_LEAD
from trialmgr.auth.policies import current_actor, roles
from trialmgr.clock import actor_today, utcnow
from trialmgr.forms import listing, load_form, plain_messages
from trialmgr.templating import format_date, format_datetime

bp = Blueprint("audit", __name__)


# The columns the audit trail may be sorted by (?sort=); newest first by default.
AUDIT_SORTS = {
    "id": (AuditEvent.id,),
    "actor": (AuditEvent.actor, AuditEvent.id),
    "action": (AuditEvent.action, AuditEvent.id),
    "entity": (AuditEvent.entity, AuditEvent.id),
}


class AuditPageQuery(AuditQuery):
    """The page's filters: the API's, and a subject code (every record about the subject)."""

    subject = fields.String(validate=validate.Length(max=20))


@bp.route("/audit")
@roles(ADMIN, CONSORTIUM_LEAD)
def audit_list() -> Any:
    errors: dict[str, Any] = {}
    try:
        args = load_form(AuditPageQuery(), request.args)
    except ValidationError as exc:
        errors, args = plain_messages(exc.normalized_messages()), {}
    related = None
    if args.get("subject"):
        related = readable.records_of_subject(args["subject"])
        if not related:
            errors["subject"] = [f"No subject {args['subject'].strip().upper()}."]
    filters = services.AuditFilter(
        entity=args.get("entity"),
        entity_id=args.get("entity_id"),
        actor=args.get("actor"),
        since=args.get("since"),
        until=args.get("until"),
        related=related,
    )
    query = services.query(filters)
    if request.args.get("format") == "csv":
        return readable_audit_csv(query, actor_today(current_actor(), utcnow()))
    rows = listing(query, AUDIT_SORTS, "id", "desc")
    if "subject" in errors:
        rows.items, rows.total, rows.has_next = [], 0, False
    return render_template(
        "audit/list.html",
        events=readable.readable(rows.items, format_date, format_datetime),
        listing=rows,
        has_next=rows.has_next,
        page=rows.page,
        args=request.args,
        errors=errors,
    ), (422 if errors else 200)


@bp.route("/audit/verify")
@roles(ADMIN, CONSORTIUM_LEAD)
def audit_verify() -> str:
    return render_template("audit/verify.html", result=services.verify(full=False))
