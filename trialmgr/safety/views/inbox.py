"""The signed-in user's work: their open tasks (each linking to the form that closes it),
their notifications, and the administrators' MedDRA dictionary import."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from trialmgr.auth.models import ADMIN
from trialmgr.auth.policies import ANY_ROLE, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.extensions import db
from trialmgr.forms import Refusal, page_of, submit
from trialmgr.partners.services.sites import site_today
from trialmgr.safety.services import dictionary as dictionary_service
from trialmgr.safety.services import notify as notify_service
from trialmgr.safety.services import work as work_service
from trialmgr.safety.views.common import bp, task_link


@bp.route("/tasks")
@roles(*ANY_ROLE)
def task_list() -> str:
    """Your role's tasks in your sites, open ones by due date (overdue in red)."""
    actor = current_actor()
    now = utcnow()
    include_done = request.args.get("include_done") == "true"
    items, page, has_next = page_of(work_service.queue_for(actor, include_done))
    rows = []
    for item in items:
        href, words = task_link(item, actor)
        today = site_today(item.subject.site, now)
        overdue = item.status == "open" and item.due_on is not None and item.due_on < today
        rows.append({"item": item, "href": href, "words": words, "overdue": overdue})
    return render_template(
        "safety/task_list.html",
        rows=rows,
        include_done=include_done,
        page=page,
        has_next=has_next,
        args={"include_done": "true"} if include_done else {},
    )


@bp.route("/notifications")
@roles(*ANY_ROLE)
def notification_list() -> str:
    actor = current_actor()
    unread_only = request.args.get("unread") == "true"
    items, page, has_next = page_of(notify_service.inbox(actor, unread_only))
    return render_template(
        "safety/notifications.html",
        items=items,
        unread_only=unread_only,
        page=page,
        has_next=has_next,
        args={"unread": "true"} if unread_only else {},
    )


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@roles(*ANY_ROLE)
def notification_read(notification_id: int) -> Any:
    item = notify_service.mark_read(current_actor(), notification_id, utcnow())
    link = item.link or ""
    if request.form.get("open") and link.startswith("/") and not link.startswith("//"):
        return redirect(link)
    return redirect(url_for("safety.notification_list"))


@bp.route("/notifications/read-all", methods=["POST"])
@roles(*ANY_ROLE)
def notification_read_all() -> Any:
    actor = current_actor()
    now = utcnow()
    unread = list(db.session.execute(notify_service.inbox(actor, unread_only=True)).scalars())
    for item in unread:
        notify_service.mark_read(actor, item.id, now)
    flash(f"{len(unread)} notification{'s' if len(unread) != 1 else ''} marked as read.", "success")
    return redirect(url_for("safety.notification_list"))


@bp.route("/admin/meddra", methods=["GET", "POST"])
@roles(ADMIN)
def meddra_import() -> Any:
    """Upload the consortium's own MedDRA preferred terms (CSV: pt_code, pt_term, soc,
    soc_code); the whole file or nothing."""
    refusal = None
    if request.method == "POST":

        def act() -> dict[str, int]:
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                raise ValidationError({"file": ["Attach the CSV file."]})
            return dictionary_service.import_csv(current_actor(), upload.read())

        result = submit("meddra", act)
        if not isinstance(result, Refusal):
            flash(
                f"MedDRA dictionary imported: {result['added']} terms added, "
                f"{result['updated']} updated ({result['rows']} rows read).",
                "success",
            )
            return redirect(url_for("safety.meddra_import"))
        refusal = result
    return render_template(
        "safety/meddra_import.html",
        loaded=dictionary_service.loaded(),
        refusal=refusal,
    ), (refusal.status if refusal else 200)
