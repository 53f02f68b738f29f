"""Pages: a trial's data dictionary (every role), and the export page (leads and
administrators): choose a trial, a format and its options; free text in the analysis
archive needs a confirmation. The download goes through the same path as the API
(exports.download): built, hashed, audited, then sent."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from trialmgr.auth.policies import current_actor, roles
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.exports import download
from trialmgr.exports.policies import DICTIONARY_READERS, EXPORTERS
from trialmgr.exports.schemas import EXPORT_KINDS, ExportForm
from trialmgr.exports.services import dictionary
from trialmgr.extensions import db
from trialmgr.forms import Refusal, load_form, submit, typed_values

bp = Blueprint("exports", __name__)


@bp.route("/trials/<int:trial_id>/data-dictionary")
@roles(*DICTIONARY_READERS)
def data_dictionary(trial_id: int) -> Any:
    trial = trials_service.get_trial(trial_id)
    return render_template(
        "exports/dictionary.html",
        trial=trial,
        forms=dictionary.FORMS,
        variables=list(dictionary.variables(trial)),
        visits=dictionary.visit_codelist(trial),
    )


def _page(refusal: Refusal | None = None) -> tuple[str, int]:
    trials = list(db.session.execute(trials_service.trial_query({})).scalars())
    values = typed_values(request.form) if refusal else {}
    return render_template(
        "exports/index.html",
        trials=trials,
        kinds=EXPORT_KINDS,
        refusal=refusal,
        errors=refusal.field_errors() if refusal else {},
        values=values,
    ), (refusal.status if refusal else 200)


@bp.route("/exports")
@roles(*EXPORTERS)
def export_page() -> tuple[str, int]:
    return _page()


def _download() -> Any:
    data = load_form(ExportForm(), request.form)
    kind = data.pop("kind")
    trial_id = data.pop("trial_id")
    if kind == "analysis":
        options = {k: data[k] for k in ("include_free_text", "confirm")}
        return download.send(current_actor(), "analysis", trial_id, options)
    if kind == "odm":
        return download.send(current_actor(), "odm", trial_id, {"audit": data["audit"]})
    fmt = kind.removeprefix("fhir_")
    return download.send(
        current_actor(), "fhir", trial_id, {"format": fmt, "base": request.host_url}
    )


@bp.route("/exports", methods=["POST"])
@roles(*EXPORTERS)
def export_download() -> Any:
    done = submit("export", _download)
    if isinstance(done, Refusal):
        return _page(done)
    return done
