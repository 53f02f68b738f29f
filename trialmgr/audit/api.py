"""/api/v1/audit: the trail with filters and CSV export, and chain verification."""

from __future__ import annotations

from typing import Any

from trialmgr.audit import services
from trialmgr.audit.export import audit_csv
from trialmgr.audit.schemas import AuditEventOut, AuditQuery, VerifyOut
from trialmgr.auth.models import ADMIN, CONSORTIUM_LEAD
from trialmgr.auth.policies import roles
from trialmgr.db import paginate
from trialmgr.extensions import ApiBlueprint, db

blp = ApiBlueprint("audit_api", __name__, url_prefix="/api/v1", description="Audit trail")


def _filters(args: dict[str, Any]) -> services.AuditFilter:
    return services.AuditFilter(
        entity=args.get("entity"),
        entity_id=args.get("entity_id"),
        actor=args.get("actor"),
        since=args.get("since"),
        until=args.get("until"),
    )


@blp.route("/audit", methods=["GET"])
@roles(ADMIN, CONSORTIUM_LEAD)
@blp.arguments(AuditQuery, location="query")
@blp.response(200, AuditEventOut(many=True))
@blp.paginate()
def list_audit(args: dict[str, Any], pagination_parameters: Any) -> Any:
    """Newest first, paginated."""
    return paginate(db.session, services.query(_filters(args)), pagination_parameters)


@blp.route("/audit/export", methods=["GET"])
@roles(ADMIN, CONSORTIUM_LEAD)
@blp.arguments(AuditQuery, location="query")
@blp.response(200, content_type="text/csv")
def export_audit(args: dict[str, Any]) -> Any:
    """Every matching event as CSV (same filters as the list)."""
    return audit_csv(services.query(_filters(args)))


@blp.route("/audit/verify", methods=["GET"])
@roles(ADMIN, CONSORTIUM_LEAD)
@blp.response(200, VerifyOut)
def verify_audit() -> dict[str, Any]:
    """Verify the hash chain from the last full verification's checkpoint (the full walk is
    `flask audit verify` and the scheduler's); `valid: false` names the first bad row."""
    return services.verify(full=False).as_dict()
