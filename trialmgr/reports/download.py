"""The PDF download, the same for the API and the page."""

from __future__ import annotations

from typing import Any

from flask import send_file
from werkzeug.wrappers import Response

from trialmgr.lifecycle import begin_writing
from trialmgr.reports.services import archive


def pdf_response(actor: Any, archive_id: int) -> Response:
    """The report's PDF once its bytes match the recorded sha256 (409 and an audit event if
    not; 404 if the file is gone), under a safe file name, never cached; the download is
    recorded in the audit trail."""
    report = archive.get_report(actor, archive_id)
    begin_writing()
    handle = archive.open_verified(actor, report)
    archive.record_download(actor, report)
    response = send_file(
        handle,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=archive.download_name(report),
        conditional=False,
        etag=False,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
