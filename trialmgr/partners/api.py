"""/api/v1/partners, /api/v1/sites, /api/v1/approvals."""

from __future__ import annotations

from typing import Any

from flask import send_file
from flask_smorest import abort

from trialmgr.auth.policies import ANY_ROLE, MANAGERS, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.db import paginate
from trialmgr.extensions import ApiBlueprint, db
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
    SiteStatusChangeOut,
    StatusChangeIn,
)
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import directory as directory_service
from trialmgr.partners.services import documents as documents_service
from trialmgr.partners.services import sites as sites_service
from trialmgr.partners.services import status as status_service

blp = ApiBlueprint("partners_api", __name__, url_prefix="/api/v1", description="Partners and sites")


def _partner_out(partner: Any) -> dict[str, Any]:
    out = {c: getattr(partner, c) for c in PartnerOut().fields if c != "sites"}
    out["sites"] = directory_service.visible_sites_of(current_actor(), partner)
    return out


@blp.route("/partners", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(PartnerQuery, location="query")
@blp.response(200, PartnerOut(many=True))
@blp.paginate()
def list_partners(filters: dict[str, Any], pagination_parameters: Any) -> list[Any]:
    """The consortium directory: search `q`, filter by kind, country, active."""
    partners = paginate(db.session, directory_service.partner_query(filters), pagination_parameters)
    return [_partner_out(p) for p in partners]


@blp.route("/partners/export", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(PartnerQuery, location="query")
@blp.response(200, content_type="text/csv")
def export_partners(filters: dict[str, Any]) -> Any:
    """The directory as CSV (same filters as the list)."""
    return partners_csv(current_actor(), directory_service.partner_query(filters))


@blp.route("/partners", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(PartnerIn)
@blp.response(201, PartnerOut)
def create_partner(data: dict[str, Any]) -> Any:
    return _partner_out(directory_service.create_partner(current_actor(), data))


@blp.route("/partners/<int:partner_id>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, PartnerOut)
def get_partner(partner_id: int) -> Any:
    return _partner_out(directory_service.get_partner(partner_id))


@blp.route("/partners/<int:partner_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(PartnerPatch)
@blp.response(200, PartnerOut)
def update_partner(data: dict[str, Any], partner_id: int) -> Any:
    partner = directory_service.update_partner(
        current_actor(), directory_service.get_partner(partner_id), data
    )
    return _partner_out(partner)


@blp.route("/sites", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(SiteQuery, location="query")
@blp.response(200, SiteOut(many=True))
@blp.paginate()
def list_sites(filters: dict[str, Any], pagination_parameters: Any) -> list[Any]:
    """Sites you may see (coordinators: their own)."""
    query = sites_service.site_query(current_actor(), filters)
    now = utcnow()
    return [
        sites_service.site_view(s, now) for s in paginate(db.session, query, pagination_parameters)
    ]


@blp.route("/sites", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(SiteIn)
@blp.response(201, SiteOut)
def create_site(data: dict[str, Any]) -> Any:
    """A new site, pending until activated; `timezone` (IANA) is required: the site's dates
    are its local calendar dates."""
    return sites_service.site_view(sites_service.create_site(current_actor(), data), utcnow())


@blp.route("/sites/<int:site_id>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, SiteOut)
def get_site(site_id: int) -> Any:
    return sites_service.site_view(sites_service.get_site(current_actor(), site_id), utcnow())


@blp.route("/sites/<int:site_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(SitePatch)
@blp.response(200, SiteOut)
def update_site(data: dict[str, Any], site_id: int) -> Any:
    actor = current_actor()
    site = sites_service.update_site(actor, sites_service.get_site(actor, site_id), data)
    return sites_service.site_view(site, utcnow())


@blp.route("/sites/<int:site_id>/approvals", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, ApprovalOut(many=True))
def list_approvals(site_id: int) -> Any:
    site = sites_service.get_site(current_actor(), site_id)
    now = utcnow()
    return [approvals_service.approval_view(a, now) for a in site.approvals]


@blp.route("/sites/<int:site_id>/approvals", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ApprovalIn)
@blp.response(201, ApprovalOut)
def add_approval(data: dict[str, Any], site_id: int) -> Any:
    """Record an approval or its renewal (the newest grant is the record in force)."""
    actor = current_actor()
    now = utcnow()
    approval = approvals_service.add_approval(
        actor, sites_service.get_site(actor, site_id), data, now
    )
    return approvals_service.approval_view(approval, now)


@blp.route("/approvals/<int:approval_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(ApprovalPatch)
@blp.response(200, ApprovalOut)
def update_approval(data: dict[str, Any], approval_id: int) -> Any:
    """Correct an approval or record its withdrawal (`withdrawn_on`), with a reason."""
    actor = current_actor()
    now = utcnow()
    approval = approvals_service.update_approval(
        actor, approvals_service.get_approval(actor, approval_id), data, now
    )
    return approvals_service.approval_view(approval, now)


@blp.route("/approvals/<int:approval_id>/document", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(DocumentIn, location="files")
@blp.response(201, ApprovalOut)
def upload_document(files: dict[str, Any], approval_id: int) -> Any:
    """Attach the approval letter (PDF, multipart field `file`)."""
    actor = current_actor()
    upload = files["file"]
    approval = approvals_service.get_approval(actor, approval_id)
    documents_service.attach_document(actor, approval, upload.filename, upload.read())
    return approvals_service.approval_view(approval, utcnow())


@blp.route("/approvals/<int:approval_id>/document", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, content_type="application/pdf")
def download_document(approval_id: int) -> Any:
    approval = approvals_service.get_approval(current_actor(), approval_id)
    path = documents_service.document_path(approval)
    if not path.exists():
        abort(404, message="The stored document is missing.")
    return send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=documents_service.download_name(approval.document_name),
    )


@blp.route("/sites/<int:site_id>/activate", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ActivateIn)
@blp.response(200, SiteOut)
def activate_site(data: dict[str, Any], site_id: int) -> Any:
    """Open the site, or reactivate a suspended one (recorded as a reactivation): 409 with
    `errors.missing` unless the IRB, IBC, contract and SIV records in force are current on
    `activated_on` and today; 409 for a closed site (closing is final)."""
    actor = current_actor()
    now = utcnow()
    site = status_service.activate_site(
        actor,
        sites_service.get_site(actor, site_id),
        now,
        data.get("activated_on"),
        data.get("reason"),
    )
    return sites_service.site_view(site, now)


@blp.route("/sites/<int:site_id>/suspend", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(StatusChangeIn)
@blp.response(200, SiteOut)
def suspend_site(data: dict[str, Any], site_id: int) -> Any:
    """Suspend an active site from `on` (default: the site's today): clinical events dated
    from then are refused until it is reactivated; enrolled subjects continue follow-up."""
    actor = current_actor()
    now = utcnow()
    site = status_service.suspend_site(
        actor, sites_service.get_site(actor, site_id), data["reason"], now, data.get("on")
    )
    return sites_service.site_view(site, now)


@blp.route("/sites/<int:site_id>/close", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(StatusChangeIn)
@blp.response(200, SiteOut)
def close_site(data: dict[str, Any], site_id: int) -> Any:
    """Close the site from `on` (default: the site's today). Final: no reactivation."""
    actor = current_actor()
    now = utcnow()
    site = status_service.close_site(
        actor, sites_service.get_site(actor, site_id), data["reason"], now, data.get("on")
    )
    return sites_service.site_view(site, now)


@blp.route("/sites/<int:site_id>/status-history", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, SiteStatusChangeOut(many=True))
def site_status_history(site_id: int) -> Any:
    """Activations, suspensions, reactivations and closure, oldest first, each with the day
    (at the site) from which it holds."""
    return sites_service.get_site(current_actor(), site_id).status_changes
