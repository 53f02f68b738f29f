"""Approval letters: PDFs stored under instance/documents by their sha256."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from flask import current_app

from trialmgr.audit import services as audit
from trialmgr.errors import Invalid, NotFound
from trialmgr.partners.models import SiteApproval
from trialmgr.partners.policies import require_manager


def document_dir() -> Path:
    return Path(current_app.instance_path) / "documents"


# Control characters (CR/LF split headers) and bidirectional overrides (a name that reads
# "letter.pdf" but is "fdp.exe...") have no place in a file name shown to others.
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069\\/]")


def download_name(filename: str | None) -> str:
    """A letter's name as offered for download: its last path part without control or
    bidi characters, at most 120 characters, always ending in .pdf (the original name is
    kept in the audit trail of the upload)."""
    name = _UNSAFE_NAME.sub("", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    stem = stem.strip(" .")[:116] or "approval"
    return f"{stem}.pdf"


def attach_document(
    actor: Any, approval: SiteApproval, filename: str, content: bytes
) -> SiteApproval:
    """Store an approval letter: a PDF (by its first bytes, not its name), at most
    UPLOAD_MAX_BYTES, kept under instance/documents by sha256, written atomically."""
    require_manager(actor)
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if len(content) > limit:
        raise Invalid(
            "The file is too large.", errors={"file": [f"At most {limit // (1024 * 1024)} MB."]}
        )
    if not content.startswith(b"%PDF-"):
        raise Invalid("Only PDF documents are accepted.", errors={"file": ["Not a PDF file."]})
    digest = hashlib.sha256(content).hexdigest()
    folder = document_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}.pdf"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    with audit.audited(actor, action="approval.document"):
        approval.document_name = download_name(filename)
        approval.document_sha256 = digest
        approval.document_size = len(content)
    if approval.document_name != filename:
        audit.record(
            actor,
            "approval.document_name",
            "site_approval",
            approval.id,
            {"uploaded_as": filename[:500], "stored_as": approval.document_name},
        )
    return approval


def document_path(approval: SiteApproval) -> Path:
    if not approval.document_sha256:
        raise NotFound("This approval has no document.")
    return document_dir() / f"{approval.document_sha256}.pdf"
