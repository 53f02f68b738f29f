"""The audit trail page: filters, CSV export, chain verification."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from marshmallow import ValidationError

from trialmgr.audit import services
from trialmgr.audit.export import audit_csv
from trialmgr.audit.models import AuditEvent
from trialmgr.audit.schemas import AuditQuery
from trialmgr.auth.models import ADMIN, CONSORTIUM_LEAD
from trialmgr.auth.policies import roles
from trialmgr.forms import listing, load_form, plain_messages

bp = Blueprint("audit", __name__)


# The columns the audit trail may be sorted by (?sort=); newest first by default.
AUDIT_SORTS = {
    "id": (AuditEvent.id,),
    "actor": (AuditEvent.actor, AuditEvent.id),
    "action": (AuditEvent.action, AuditEvent.id),
    "entity": (AuditEvent.entity, AuditEvent.id),
}


@bp.route("/audit")
@roles(ADMIN, CONSORTIUM_LEAD)
def audit_list() -> Any:
    errors: dict[str, Any] = {}
    try:
        args = load_form(AuditQuery(), request.args)
    except ValidationError as exc:
        errors, args = plain_messages(exc.normalized_messages()), {}
    filters = services.AuditFilter(
        entity=args.get("entity"),
        entity_id=args.get("entity_id"),
        actor=args.get("actor"),
        since=args.get("since"),
        until=args.get("until"),
    )
    query = services.query(filters)
    if request.args.get("format") == "csv":
        return audit_csv(query)
    rows = listing(query, AUDIT_SORTS, "id", "desc")
    events, page, has_next = rows.items, rows.page, rows.has_next
    return render_template(
        "audit/list.html",
        events=events,
        listing=rows,
        has_next=has_next,
        page=page,
        args=request.args,
        errors=errors,
    ), (422 if errors else 200)


@bp.route("/audit/verify")
@roles(ADMIN, CONSORTIUM_LEAD)
def audit_verify() -> str:
    return render_template("audit/verify.html", result=services.verify(full=False))
