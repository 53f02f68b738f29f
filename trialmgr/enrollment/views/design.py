"""The trial page's design corrections during setup (edit or remove a cohort, criterion or
visit definition, removal confirmed on a page of its own) and consent approvals per site."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema

from trialmgr.auth.policies import MANAGERS, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import ConsentSiteApproval, ConsentVersion, Trial
from trialmgr.enrollment.schemas import (
    CohortPatch,
    CriterionPatch,
    RemovalIn,
    VisitDefinitionPatch,
)
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.enrollment.views.common import SiteApprovalForm, bp, site_choices
from trialmgr.enrollment.views.trials import trial_action, trial_page
from trialmgr.errors import Invalid, NotFound
from trialmgr.forms import Refusal, load_form, submit
from trialmgr.templating import format_date

PATCH_SCHEMAS: dict[str, type[Schema]] = {
    "cohort": CohortPatch,
    "criterion": CriterionPatch,
    "visit_definition": VisitDefinitionPatch,
}


def describe_item(item: Any) -> str:
    """A design item as a sentence names it."""
    kind = type(item).__name__
    if kind == "Cohort":
        return f"cohort {item.label} ({item.dose} {item.dose_unit}, capacity {item.capacity})"
    if kind == "EligibilityCriterion":
        return f"{item.kind} criterion {item.code}"
    return f"visit {item.name} (day {item.day})"


def _item_of(trial: Trial, kind: str, item_id: int) -> Any:
    """The trial's cohort, criterion or visit definition; anything else answers 404."""
    if kind not in PATCH_SCHEMAS:
        raise NotFound(f"No design item kind {kind}.")
    item = trials_service.get_design_item(kind, item_id)
    if item.trial_id != trial.id:
        raise NotFound(f"No {kind.replace('_', ' ')} {item_id} in trial {trial.code}.")
    return item


@bp.route("/trials/<int:trial_id>/design/<kind>/<int:item_id>", methods=["POST"])
@roles(*MANAGERS)
def design_item_edit(trial_id: int, kind: str, item_id: int) -> Any:
    """Correct a design item while the trial is in setup (the service refuses afterwards)."""

    def act(actor: Any, trial: Trial) -> str:
        item = _item_of(trial, kind, item_id)
        data = load_form(PATCH_SCHEMAS[kind](), request.form)
        trials_service.update_design_item(actor, item, data)
        return f"{describe_item(item).capitalize()} saved."

    return trial_action(trial_id, f"edit-{kind}-{item_id}", act)


@bp.route("/trials/<int:trial_id>/design/<kind>/<int:item_id>/remove", methods=["POST"])
@roles(*MANAGERS)
def design_item_remove(trial_id: int, kind: str, item_id: int) -> Any:
    """Removal in two steps without JavaScript: the first POST shows what will go and asks
    to confirm; the second (confirm=yes) removes it."""
    trial = trials_service.get_trial(trial_id)
    item = _item_of(trial, kind, item_id)
    what = describe_item(item)
    form_name = f"remove-{kind}-{item_id}"
    if request.form.get("confirm") != "yes":
        # Nothing to confirm once the trial has opened: say so on the trial page.
        refused = submit(form_name, lambda: trials_service.require_setup(trial, "the design"))
        if isinstance(refused, Refusal):
            return trial_page(trial, refused)
        return render_template(
            "enrollment/design_remove.html", trial=trial, kind=kind, item=item, what=what
        )

    def act() -> None:
        data = load_form(RemovalIn(), request.form)
        trials_service.remove_design_item(current_actor(), item, data.get("reason"))

    done = submit(form_name, act)
    if isinstance(done, Refusal):
        return trial_page(trial, done)
    flash(f"{what.capitalize()} removed from {trial.code}.", "success")
    return redirect(url_for("enrollment.trial_detail", trial_id=trial.id))


def _site_approval_restatement(
    trial: Trial, version: ConsentVersion, approval: ConsentSiteApproval, code: str
) -> dict[str, Any] | None:
    """What a site's approval of a version requiring re-consent does (None for one that
    does not): the active subjects at that site it asks to re-consent, counted by the
    service's own rule on the rehearsed approval."""
    if not version.reconsent_required:
        return None
    asked = [
        s
        for s in consent_service.asked_to_reconsent(version, utcnow())
        if s.site_id == approval.site_id
    ]
    count = f"{len(asked)} active subject{'' if len(asked) == 1 else 's'}"
    return {
        "title": f"approval of consent version {version.version} of {trial.code} at {code}",
        "summary": f"Version {version.version} of {trial.code} ({trial.title}) requires "
        f"re-consent: approving it at site {code} asks {count} there to re-consent.",
        "details": [
            f"Trial: {trial.code} · {trial.title}.",
            f"Consent version: {version.version}.",
            f"Site: {code}.",
            f"Approved on: {format_date(approval.approved_on)}.",
            f"Asked to re-consent now at {code}: {count}.",
            "Until they sign it, their dosing and non-safety procedures are refused.",
        ],
        "warning": "The re-consent requests go to the site's worklist as soon as it is saved.",
        "button": f"Confirm: approve version {version.version} at {code}",
    }


@bp.route("/trials/<int:trial_id>/consent-site-approvals", methods=["POST"])
@roles(*MANAGERS)
def consent_site_approval_new(trial_id: int) -> Any:
    """A site's ethics approval of a consent version (as POST
    /consent-versions/{id}/site-approvals): the site uses the version from that date. A
    version requiring re-consent is rehearsed and restated first (whom it asks there)."""
    added: dict[str, Any] = {}

    def act(actor: Any, trial: Trial) -> str:
        data = load_form(SiteApprovalForm(), request.form)
        version_id = data.pop("consent_version_id")
        version = next((v for v in trial.consent_versions if v.id == version_id), None)
        if version is None:
            raise Invalid(
                "Unknown consent version.",
                errors={"consent_version_id": [f"No version {version_id} in this trial."]},
            )
        approval = consent_service.add_site_approval(actor, version, data, utcnow())
        code = {s.id: s.code for s in site_choices(actor)}.get(approval.site_id)
        added.update(version=version, approval=approval, code=code)
        due = " Its subjects on older versions are now due for re-consent."
        due = due if version.reconsent_required else ""
        return (
            f"Version {version.version} approved at site {code} from "
            f"{format_date(approval.approved_on)}.{due}"
        )

    def confirm(trial: Trial) -> dict[str, Any] | None:
        return _site_approval_restatement(trial, added["version"], added["approval"], added["code"])

    return trial_action(trial_id, "site-approval", act, confirm)
