"""Pages: a trial's data dictionary (every role), and the export page (leads and
administrators) that downloads ODM, FHIR or the de-identified analysis archive."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from trialmgr.auth.policies import roles
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.exports.policies import DICTIONARY_READERS
from trialmgr.exports.services import dictionary

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
