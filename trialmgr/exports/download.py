"""An export from request to bytes, the same for the API and the page: find the trial,
take the write transaction (SQLite: before reading, so the offsets drawn and the audit row
meet no newer commit), build the file in a temporary file while hashing it, record the
audit row, and answer with the file. The request's one commit (after the view returns,
before the response is sent) makes the audit row durable before the first byte leaves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Response

from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.exports.services import analysis, files
from trialmgr.exports.services.files import HashingSink
from trialmgr.lifecycle import begin_writing


def _send(
    actor: Any,
    trial: Trial,
    kind: str,
    mimetype: str,
    filename: str,
    options: dict[str, Any],
    write: Callable[[HashingSink], dict[str, int]],
) -> Response:
    export = files.build(kind, mimetype, filename, write)
    files.record(actor, trial, export, options)
    return files.response(export)


def analysis_zip(actor: Any, trial_id: int, options: dict[str, Any]) -> Response:
    """The de-identified analysis archive (services/analysis.py)."""
    trial = trials_service.get_trial(trial_id)
    begin_writing()
    now = utcnow()
    drawn: dict[str, int] = {}

    def write(sink: HashingSink) -> dict[str, int]:
        counts, drawn["date_offsets_drawn"] = analysis.write(
            sink, trial, options["include_free_text"], now
        )
        return counts

    name = f"{trial.code}-analysis-{now:%Y%m%d}.zip"
    export = files.build("analysis", "application/zip", name, write)
    files.record(actor, trial, export, {**options, **drawn})
    return files.response(export)
