"""An export from request to bytes, the same for the API, the page and the command line:
find the trial, take the write transaction (SQLite: before reading, so the offsets drawn
and the audit row meet no newer commit), build the file in a temporary file while hashing
it, record the audit row, and answer with the file. The request's one commit (after the
view returns, before the response is sent) makes the audit row durable before the first
byte leaves (decision 0012)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Response

from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.exports.services import analysis, fhir, files, odm
from trialmgr.exports.services.files import ExportFile, HashingSink
from trialmgr.lifecycle import begin_writing

Writer = Callable[[HashingSink], dict[str, int]]


def build_analysis(actor: Any, trial: Trial, options: dict[str, Any]) -> ExportFile:
    """The de-identified analysis archive (services/analysis.py), audited."""
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
    return export


def build_odm(actor: Any, trial: Trial, options: dict[str, Any]) -> ExportFile:
    """CDISC ODM 1.3.2 (services/odm.py), audited."""
    now = utcnow()

    def write(sink: HashingSink) -> dict[str, int]:
        return odm.write(sink, trial, options["audit"], now)

    name = f"{trial.code}-odm-{now:%Y%m%d}.xml"
    export = files.build("odm", "application/xml", name, write)
    files.record(actor, trial, export, options)
    return export


def build_fhir(actor: Any, trial: Trial, options: dict[str, Any]) -> ExportFile:
    """HL7 FHIR R4B (services/fhir.py), audited; `base` is where fullUrls point."""
    now = utcnow()
    fmt = options["format"]

    def write(sink: HashingSink) -> dict[str, int]:
        return fhir.write(sink, trial, fmt, options.get("base") or "urn:trialmgr", now)

    name = f"{trial.code}-fhir-{now:%Y%m%d}.{fmt}"
    export = files.build("fhir", fhir.MIMETYPES[fmt], name, write)
    files.record(actor, trial, export, {"format": fmt})
    return export


BUILDERS: dict[str, Callable[[Any, Trial, dict[str, Any]], ExportFile]] = {
    "analysis": build_analysis,
    "odm": build_odm,
    "fhir": build_fhir,
}


def send(actor: Any, kind: str, trial_id: int, options: dict[str, Any]) -> Response:
    """Build, audit and answer with the export (API and page)."""
    trial = trials_service.get_trial(trial_id)
    begin_writing()
    return files.response(BUILDERS[kind](actor, trial, options))
