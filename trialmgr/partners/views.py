"""Pages: the partner directory, sites, their approvals and the activation gate.

Every write goes through the same service the API calls; a refused form is
re-rendered with its errors and the refusal's status (422 fields, 409 a rule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from trialmgr.audit import services as audit
from trialmgr.auth.policies import ANY_ROLE, MANAGERS, current_actor, roles
from trialmgr.clock import actor_today, format_local, utcnow
from trialmgr.errors import NotFound
from trialmgr.extensions import db
from trialmgr.forms import (
    Refusal,
    cancelled,
    confirmed,
    filter_args,
    listing,
    load_filters,
    load_form,
    rehearse,
    replay_fields,
    submit,
)
from trialmgr.partners import audit_reading  # noqa: F401  (registers the audit labels)
from trialmgr.partners.export import partners_csv_for_people
from trialmgr.partners.models import (
    APPROVAL_KINDS,
    APPROVAL_LABELS,
    PARTNER_KINDS,
    SITE_STATUSES,
    Partner,
    Site,
)
from trialmgr.partners.policies import can_manage
from trialmgr.partners.schemas import (
    ApprovalIn,
    ApprovalPatch,
    PartnerIn,
    PartnerPatch,
    PartnerQuery,
    SiteIn,
    SitePatch,
    SiteQuery,
)
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import directory as directory_service
from trialmgr.partners.services import documents as documents_service
from trialmgr.partners.services import sites as sites_service
from trialmgr.partners.zones import COUNTRY_ZONES, suggested_zone, zone_choices

bp = Blueprint("partners", __name__)


# --- form plumbing --------------------------------------------------------------


def _load(schema: Schema, form: MultiDict[str, str], clearable: bool = False) -> Any:
    return load_form(schema, form, clearable=clearable)


def _form_values(form: MultiDict[str, str], checkboxes: tuple[str, ...] = ()) -> dict[str, Any]:
    """What the user typed, to put back in a re-rendered form (a checkbox's last value wins)."""
    values: dict[str, Any] = form.to_dict()
    for name in checkboxes:
        values[name] = form.getlist(name)[-1:] == ["true"]
    return values


def _partner_choices() -> list[tuple[int, str]]:
    return [
        (p.id, f"{p.short_name} · {p.name}")
        for p in db.session.execute(directory_service.partner_query({})).scalars()
    ]


# --- partners -------------------------------------------------------------------

# The columns a list may be sorted by (?sort=), each naming the columns it orders by.
PARTNER_SORTS = {
    "name": (Partner.name,),
    "short_name": (Partner.short_name,),
    "kind": (Partner.kind,),
    "country": (Partner.country,),
    "active": (Partner.active,),
}
SITE_SORTS = {
    "code": (Site.code,),
    "name": (Site.name,),
    "country": (Site.country,),
    "status": (Site.status,),
    "target": (Site.target_enrollment,),
}


@bp.route("/partners")
@roles(*ANY_ROLE)
def partner_list() -> Any:
    filters, errors = load_filters(PartnerQuery())
    rows = listing(
        directory_service.partner_query(filters), PARTNER_SORTS, "name", tiebreak=Partner.id
    )
    partners, page, has_next = rows.items, rows.page, rows.has_next
    countries = directory_service.partner_countries()
    actor = current_actor()
    return render_template(
        "partners/partner_list.html",
        partners=[(p, directory_service.visible_sites_of(actor, p)) for p in partners],
        listing=rows,
        kinds=PARTNER_KINDS,
        countries=list(countries),
        args=filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        manager=can_manage(actor),
    ), (422 if errors else 200)


@bp.route("/partners/export.csv")
@roles(*ANY_ROLE)
def partner_export() -> Response:
    """The directory as shown (same search and filters), every page."""
    filters, errors = load_filters(PartnerQuery())
    if errors:
        raise ValidationError(errors)
    actor = current_actor()
    query = directory_service.partner_query(filters)
    return partners_csv_for_people(actor, query, actor_today(actor, utcnow()))


def _partner_form(
    partner: Partner | None, values: dict[str, Any], errors: dict[str, Any], status: int
) -> tuple[str, int]:
    return render_template(
        "partners/partner_form.html",
        partner=partner,
        values=values,
        errors=errors,
        kinds=PARTNER_KINDS,
    ), status


@bp.route("/partners/new", methods=["GET", "POST"])
@roles(*MANAGERS)
def partner_new() -> Any:
    if request.method == "GET":
        return _partner_form(None, {"active": True}, {}, 200)

    def act() -> Any:
        return directory_service.create_partner(current_actor(), _load(PartnerIn(), request.form))

    result = submit("partner", act)
    if isinstance(result, Refusal):
        return _partner_form(
            None, _form_values(request.form, ("active",)), result.field_errors(), result.status
        )
    partner = result
    flash(f"Partner {partner.name} added.", "success")
    return redirect(url_for("partners.partner_detail", partner_id=partner.id))


@bp.route("/partners/<int:partner_id>/edit", methods=["GET", "POST"])
@roles(*MANAGERS)
def partner_edit(partner_id: int) -> Any:
    partner = directory_service.get_partner(partner_id)
    if request.method == "GET":
        return _partner_form(partner, {f: getattr(partner, f) for f in PartnerIn().fields}, {}, 200)

    def act() -> Any:
        data = _load(PartnerPatch(), request.form, clearable=True)
        return directory_service.update_partner(current_actor(), partner, data)

    result = submit("partner", act)
    if isinstance(result, Refusal):
        return _partner_form(
            partner, _form_values(request.form, ("active",)), result.field_errors(), result.status
        )
    flash(f"Partner {partner.name} updated.", "success")
    return redirect(url_for("partners.partner_detail", partner_id=partner.id))


@bp.route("/partners/<int:partner_id>")
@roles(*ANY_ROLE)
def partner_detail(partner_id: int) -> str:
    actor = current_actor()
    partner = directory_service.get_partner(partner_id)
    return render_template(
        "partners/partner_detail.html",
        partner=partner,
        sites=directory_service.visible_sites_of(actor, partner),
        manager=can_manage(actor),
    )


# --- sites ----------------------------------------------------------------------


@bp.route("/sites")
@roles(*ANY_ROLE)
def site_list() -> Any:
    actor = current_actor()
    filters, errors = load_filters(SiteQuery())
    rows = listing(sites_service.site_query(actor, filters), SITE_SORTS, "code", tiebreak=Site.id)
    sites, page, has_next = rows.items, rows.page, rows.has_next
    now = utcnow()
    return render_template(
        "partners/site_list.html",
        sites=[(s, sites_service.site_view(s, now)) for s in sites],
        listing=rows,
        statuses=SITE_STATUSES,
        args=filter_args(),
        filtered=bool(filters),
        page=page,
        has_next=has_next,
        errors=errors,
        manager=can_manage(actor),
    ), (422 if errors else 200)


def _site_form(
    site: Site | None, values: dict[str, Any], errors: dict[str, Any], status: int
) -> tuple[str, int]:
    if not values.get("timezone"):
        # a suggestion from the country; the form's script updates it as the country is typed
        values = {**values, "timezone": suggested_zone(values.get("country")) or ""}
    return render_template(
        "partners/site_form.html",
        site=site,
        values=values,
        errors=errors,
        partners=_partner_choices(),
        zones=zone_choices(),
        country_zones=COUNTRY_ZONES,
    ), status


@bp.route("/sites/new", methods=["GET", "POST"])
@roles(*MANAGERS)
def site_new() -> Any:
    if request.method == "GET":
        values: dict[str, Any] = {
            "partner_id": request.args.get("partner_id", ""),
            "target_enrollment": 0,
        }
        partner_id = request.args.get("partner_id", type=int)
        partner = db.session.get(Partner, partner_id) if partner_id else None
        if partner is not None:
            values["country"] = partner.country
        return _site_form(None, values, {}, 200)

    def act() -> Any:
        return sites_service.create_site(current_actor(), _load(SiteIn(), request.form))

    result = submit("site", act)
    if isinstance(result, Refusal):
        return _site_form(None, _form_values(request.form), result.field_errors(), result.status)
    site = result
    flash(f"Site {site.code} created; it stays pending until activated.", "success")
    return redirect(url_for("partners.site_detail", site_id=site.id))


@bp.route("/sites/<int:site_id>/edit", methods=["GET", "POST"])
@roles(*MANAGERS)
def site_edit(site_id: int) -> Any:
    actor = current_actor()
    site = sites_service.get_site(actor, site_id)
    if request.method == "GET":
        return _site_form(site, {f: getattr(site, f) for f in SiteIn().fields}, {}, 200)

    def act() -> Any:
        return sites_service.update_site(
            actor, site, _load(SitePatch(), request.form, clearable=True)
        )

    result = submit("site", act)
    if isinstance(result, Refusal):
        return _site_form(site, _form_values(request.form), result.field_errors(), result.status)
    flash(f"Site {site.code} updated.", "success")
    return redirect(url_for("partners.site_detail", site_id=site.id))


def _site_page(
    site: Site, failed: str | None = None, errors: dict[str, Any] | None = None, status: int = 200
) -> tuple[str, int]:
    """The site page; `failed` names the form whose errors are shown next to it."""
    actor = current_actor()
    now = utcnow()
    ref = sites_service.site_today(site, now)
    manager = can_manage(actor)
    history: list[Any] = []
    if manager:
        history = list(
            db.session.execute(
                audit.query(
                    audit.AuditFilter(
                        related=[
                            ("site", [str(site.id)]),
                            ("site_approval", [str(a.id) for a in site.approvals]),
                            ("site_status_change", [str(c.id) for c in site.status_changes]),
                        ]
                    )
                ).limit(50)
            ).scalars()
        )
    view = sites_service.site_view(site, now)
    return render_template(
        "partners/site_detail.html",
        site=site,
        view=view,
        # the required kinds in the order of the gate (irb, ibc, contract, siv)
        approvals=sorted(view["approvals"], key=lambda a: APPROVAL_KINDS.index(a["kind"])),
        missing=approvals_service.missing_approvals(site, ref),
        today=ref,
        kinds=APPROVAL_KINDS,
        labels=APPROVAL_LABELS,
        manager=manager,
        history=history,
        status_changes=site.status_changes,
        local_time=format_local(now, site.timezone),
        failed=failed,
        errors=errors or {},
        values=request.form.to_dict(),
    ), status


@bp.route("/sites/<int:site_id>")
@roles(*ANY_ROLE)
def site_detail(site_id: int) -> tuple[str, int]:
    return _site_page(sites_service.get_site(current_actor(), site_id))


def site_action(
    site_id: int,
    name: str,
    act: Callable[[Any, Site], None],
    done: str,
    confirm: Callable[[Site], dict[str, Any]] | None = None,
) -> Any:
    """Run one form of the site page: PRG on success, the page with errors otherwise. An
    irreversible step (`confirm`) is rehearsed and restated first; it runs once confirmed."""
    actor = current_actor()
    site = sites_service.get_site(actor, site_id)
    if confirm is not None and cancelled(request.form):
        return _site_page(site, name)
    if confirm is not None and not confirmed(request.form):
        restated = rehearse(name, lambda: act(actor, site), lambda _: confirm(site))
        if isinstance(restated, Refusal):
            return _site_page(site, name, restated.field_errors(), restated.status)
        restated.update(action=request.path, fields=replay_fields(request.form))
        return render_template("pages/confirm.html", confirm=restated)
    result = submit(name, lambda: act(actor, site))
    if isinstance(result, Refusal):
        return _site_page(site, name, result.field_errors(), result.status)
    flash(done.format(site=site), "success")
    return redirect(url_for("partners.site_detail", site_id=site.id))


# the site's status changes (activate, suspend, close): trialmgr.partners.status_views


@bp.route("/sites/<int:site_id>/approvals", methods=["POST"])
@roles(*MANAGERS)
def approval_new(site_id: int) -> Any:
    """Record an approval and, in the same transaction, its letter if one is attached."""

    def act(actor: Any, site: Site) -> None:
        approval = approvals_service.add_approval(
            actor, site, _load(ApprovalIn(), request.form), utcnow()
        )
        upload = request.files.get("file")
        if upload is not None and upload.filename:
            documents_service.attach_document(actor, approval, upload.filename, upload.read())

    return site_action(site_id, "approval", act, "Approval recorded for {site.code}.")


@bp.route("/sites/<int:site_id>/approvals/withdraw", methods=["POST"])
@roles(*MANAGERS)
def approval_withdraw(site_id: int) -> Any:
    def act(actor: Any, site: Site) -> None:
        chosen = request.form.get("approval_id", "")
        approval = next((a for a in site.approvals if str(a.id) == chosen), None)
        if approval is None:
            raise ValidationError({"approval_id": ["Choose an approval of this site."]})
        data = _load(ApprovalPatch(only=("withdrawn_on", "reason")), request.form)
        if not data.get("withdrawn_on"):
            raise ValidationError({"withdrawn_on": ["Give the date of the withdrawal."]})
        approvals_service.update_approval(actor, approval, data, utcnow())

    return site_action(site_id, "withdraw", act, "Approval withdrawal recorded for {site.code}.")


@bp.route("/approvals/<int:approval_id>/document")
@roles(*ANY_ROLE)
def approval_document(approval_id: int) -> Response:
    """The approval letter, for anyone who may see the site (others: 404)."""
    approval = approvals_service.get_approval(current_actor(), approval_id)
    path = documents_service.document_path(approval)
    if not path.exists():
        raise NotFound("The stored document is missing.")
    return send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=documents_service.download_name(approval.document_name),
    )


# Registered on `bp` above; imported last, as it imports this module.
from trialmgr.partners import status_views  # noqa: E402, F401
