"""/api/v1/partners, /api/v1/sites, /api/v1/approvals."""

from __future__ import annotations

from typing import Any

from flask import send_file
from flask_smorest import abort

from trialmgr.auth.models import ADMIN, CONSORTIUM_LEAD
from trialmgr.auth.policies import ANY_ROLE, current_actor, roles
from trialmgr.db import paginate, today
from trialmgr.extensions import ApiBlueprint, db
from trialmgr.partners import services
from trialmgr.partners.export import partners_csv
from trialmgr.partners.schemas import (
    ActivateIn,
    ApprovalIn,
    ApprovalOut,
    ApprovalPatch,
    DocumentIn,
    PartnerIn,
    PartnerOut,
    PartnerPatch,
    PartnerQuery,
    SiteIn,
    SiteOut,
    SitePatch,
    SiteQuery,
    StatusChangeIn,
)

blp = ApiBlueprint("partners_api", __name__, url_prefix="/api/v1", description="Partners and sites")
MANAGERS = (ADMIN, CONSORTIUM_LEAD)


def _partner_out(partner: Any) -> dict[str, Any]:
    out = {c: getattr(partner, c) for c in PartnerOut().fields if c != "sites"}
    out["sites"] = services.visible_sites_of(current_actor(), partner)
    return out


@blp.route("/partners", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(PartnerQuery, location="query")
@blp.response(200, PartnerOut(many=True))
@blp.paginate()
def list_partners(filters: dict[str, Any], pagination_parameters: Any) -> list[Any]:
    """The consortium directory: search `q`, filter by kind, country, active."""
    partners = paginate(db.session, services.partner_query(filters), pagination_parameters)
    return [_partner_out(p) for p in partners]


@blp.route("/partners/export", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(PartnerQuery, location="query")
@blp.response(200, content_type="text/csv")
def export_partners(filters: dict[str, Any]) -> Any:
    """The directory as CSV (same filters as the list)."""
    return partners_csv(current_actor(), services.partner_query(filters))


@blp.route("/partners", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(PartnerIn)
@blp.response(201, PartnerOut)
def create_partner(data: dict[str, Any]) -> Any:
    return _partner_out(services.create_partner(current_actor(), data))


@blp.route("/partners/<int:partner_id>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, PartnerOut)
def get_partner(partner_id: int) -> Any:
    return _partner_out(services.get_partner(partner_id))


@blp.route("/partners/<int:partner_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(PartnerPatch)
@blp.response(200, PartnerOut)
def update_partner(data: dict[str, Any], partner_id: int) -> Any:
    partner = services.update_partner(current_actor(), services.get_partner(partner_id), data)
    return _partner_out(partner)


@blp.route("/sites", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(SiteQuery, location="query")
@blp.response(200, SiteOut(many=True))
@blp.paginate()
def list_sites(filters: dict[str, Any], pagination_parameters: Any) -> list[Any]:
    """Sites you may see (coordinators: their own)."""
    query = services.site_query(current_actor(), filters)
    return [
        services.site_view(s, today()) for s in paginate(db.session, query, pagination_parameters)
    ]


@blp.route("/sites", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(SiteIn)
@blp.response(201, SiteOut)
def create_site(data: dict[str, Any]) -> Any:
    return services.site_view(services.create_site(current_actor(), data), today())


@blp.route("/sites/<int:site_id>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, SiteOut)
def get_site(site_id: int) -> Any:
    return services.site_view(services.get_site(current_actor(), site_id), today())


@blp.route("/sites/<int:site_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(SitePatch)
@blp.response(200, SiteOut)
def update_site(data: dict[str, Any], site_id: int) -> Any:
    actor = current_actor()
    site = services.update_site(actor, services.get_site(actor, site_id), data)
    return services.site_view(site, today())


@blp.route("/sites/<int:site_id>/approvals", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, ApprovalOut(many=True))
def list_approvals(site_id: int) -> Any:
    site = services.get_site(current_actor(), site_id)
    return [services.approval_view(a, today()) for a in site.approvals]


@blp.route("/sites/<int:site_id>/approvals", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ApprovalIn)
@blp.response(201, ApprovalOut)
def add_approval(data: dict[str, Any], site_id: int) -> Any:
    actor = current_actor()
    approval = services.add_approval(actor, services.get_site(actor, site_id), data, today())
    return services.approval_view(approval, today())


@blp.route("/approvals/<int:approval_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(ApprovalPatch)
@blp.response(200, ApprovalOut)
def update_approval(data: dict[str, Any], approval_id: int) -> Any:
    """Correct an approval or record its withdrawal (`withdrawn_on`), with a reason."""
    actor = current_actor()
    approval = services.update_approval(
        actor, services.get_approval(actor, approval_id), data, today()
    )
    return services.approval_view(approval, today())


@blp.route("/approvals/<int:approval_id>/document", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(DocumentIn, location="files")
@blp.response(201, ApprovalOut)
def upload_document(files: dict[str, Any], approval_id: int) -> Any:
    """Attach the approval letter (PDF, multipart field `file`)."""
    actor = current_actor()
    upload = files["file"]
    approval = services.get_approval(actor, approval_id)
    services.attach_document(actor, approval, upload.filename, upload.read())
    return services.approval_view(approval, today())


@blp.route("/approvals/<int:approval_id>/document", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, content_type="application/pdf")
def download_document(approval_id: int) -> Any:
    approval = services.get_approval(current_actor(), approval_id)
    path = services.document_path(approval)
    if not path.exists():
        abort(404, message="The stored document is missing.")
    return send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=approval.document_name or "approval.pdf",
    )


@blp.route("/sites/<int:site_id>/activate", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ActivateIn)
@blp.response(200, SiteOut)
def activate_site(data: dict[str, Any], site_id: int) -> Any:
    """Open the site: 409 with `errors.missing` unless IRB, IBC, contract and SIV are current."""
    actor = current_actor()
    site = services.activate_site(
        actor, services.get_site(actor, site_id), today(), data.get("activated_on")
    )
    return services.site_view(site, today())


@blp.route("/sites/<int:site_id>/suspend", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(StatusChangeIn)
@blp.response(200, SiteOut)
def suspend_site(data: dict[str, Any], site_id: int) -> Any:
    actor = current_actor()
    site = services.suspend_site(actor, services.get_site(actor, site_id), data["reason"])
    return services.site_view(site, today())


@blp.route("/sites/<int:site_id>/close", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(StatusChangeIn)
@blp.response(200, SiteOut)
def close_site(data: dict[str, Any], site_id: int) -> Any:
    actor = current_actor()
    site = services.close_site(
        actor, services.get_site(actor, site_id), data["reason"], today(), data.get("on")
    )
    return services.site_view(site, today())
