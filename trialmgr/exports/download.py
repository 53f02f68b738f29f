"""An export from request to bytes, the same for the API, the page and the command line
(decision 0012): find the trial; build the file into a temporary file while hashing it,
reading under the request's read transaction; then take the write transaction (SQLite:
BEGIN IMMEDIATE, held only for the few writes that follow, never during the build), store
the date offsets the analysis archive drew and record the audit row; answer with the file.
The request's one commit (after the view returns, before the response is sent) makes the
audit row durable before the first byte leaves; a failed build or commit sends nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Response

from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.exports.services import analysis, deid, fhir, files
from trialmgr.exports.services.files import ExportFile, HashingSink
from trialmgr.lifecycle import begin_writing


def build_analysis(actor: Any, trial: Trial, options: dict[str, Any]) -> ExportFile:
    """The de-identified analysis archive (services/analysis.py), audited. Offsets drawn
    for new subjects are stored once the file is built; if a concurrent export stored other
    ones first, the file is built again with those (so every file agrees with the stored
    offsets)."""
    now = utcnow()
    name = f"{trial.code}-analysis-{now:%Y%m%d}.zip"
    offsets, drawn = deid.draw_missing(trial.id)

    def build() -> ExportFile:
        def write(sink: HashingSink) -> dict[str, int]:
            return analysis.write(sink, trial, options["include_free_text"], now, offsets)

        return files.build("analysis", "application/zip", name, write)

    export = build()
    begin_writing()
    stored = deid.store(drawn)
    if any(stored[k] != v for k, v in drawn.items()):
        export.handle.close()
        offsets.update(stored)
        export = build()
    files.record(actor, trial, export, {**options, "date_offsets_drawn": len(drawn)})
    return export


def build_odm(actor: Any, trial: Trial, options: dict[str, Any]) -> ExportFile:
    """CDISC ODM 1.3.2 (services/odm.py), audited. (odmlib and lxml load here: only this
    export uses them.)"""
    from trialmgr.exports.services import odm

    now = utcnow()

    def write(sink: HashingSink) -> dict[str, int]:
        return odm.write(sink, trial, options["audit"], now)

    export = files.build("odm", "application/xml", f"{trial.code}-odm-{now:%Y%m%d}.xml", write)
    begin_writing()
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
    begin_writing()
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
    return files.response(BUILDERS[kind](actor, trial, options))
