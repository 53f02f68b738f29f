"""An export's file: written once to an anonymous temporary file while its sha256 and size
are computed, then recorded in the audit trail (who, what, filters, row counts, sha256),
and only then sent. The request commits the audit row before the first byte goes out
(decision 0006), so a download that is received is always on record, and a file that fails
to build leaves neither a file nor an audit row (docs/decisions/0012)."""

from __future__ import annotations

import base64
import gc
import hashlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from flask import send_file
from werkzeug.wrappers import Response

from trialmgr.audit import services as audit
from trialmgr.enrollment.models import Trial

_BUFFER = 256 * 1024


class HashingSink:
    """A write-only byte stream into the temporary file that hashes what passes. It has no
    tell() or seek(): zipfile then writes its archive in one forward pass (data
    descriptors), so the bytes hashed are the bytes stored."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        if len(self._buffer) >= _BUFFER:
            self.flush()
        return len(data)

    def text(self, value: str) -> None:
        self.write(value.encode("utf-8"))

    def flush(self) -> None:
        if self._buffer:
            self._hash.update(self._buffer)
            self._handle.write(self._buffer)
            self.size += len(self._buffer)
            self._buffer.clear()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


@dataclass
class ExportFile:
    kind: str
    handle: IO[bytes]
    sha256: str
    size: int
    mimetype: str
    filename: str
    rows: dict[str, int] = field(default_factory=dict)


_COLLECTOR = threading.Lock()
_builds = 0  # builds running in this process with the cyclic collector paused
_resume = False  # whether the collector was on when the first of them began


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while exports build. A build allocates
    millions of short-lived rows, tuples and strings, none of them in cycles (reference
    counting frees them), and each allocation burst set off collections that walked every
    live object of the process: about a quarter of an ODM or FHIR build. Builds may
    overlap (threads): the collector is turned back on when the last one ends, and only if
    it was on when the first began."""
    global _builds, _resume
    with _COLLECTOR:
        if _builds == 0:
            _resume = gc.isenabled()
            gc.disable()
        _builds += 1
    try:
        yield
    finally:
        with _COLLECTOR:
            _builds -= 1
            if _builds == 0 and _resume:
                gc.enable()


def build(
    kind: str, mimetype: str, filename: str, write: Callable[[HashingSink], dict[str, int]]
) -> ExportFile:
    """Run `write` into a fresh temporary file (unlinked at once: it disappears when
    closed, also if the request fails), with the cyclic collector paused; returns the file
    rewound, with sha256 and size."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 (send_file closes it once sent)
    try:
        sink = HashingSink(handle)
        with collector_paused():
            rows = write(sink)
        sink.flush()
        handle.flush()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return ExportFile(kind, handle, sink.sha256, sink.size, mimetype, filename, rows)


def record(actor: Any, trial: Trial, export: ExportFile, filters: dict[str, Any]) -> None:
    """The export's audit row: what was exported, with which options, how many rows of each
    kind, and the sha256 and size of the exact bytes the caller receives."""
    audit.record(
        actor,
        f"export.{export.kind}",
        "trial",
        trial.id,
        {
            "trial": trial.code,
            "format": export.kind,
            "filters": filters,
            "rows": export.rows,
            "sha256": export.sha256,
            "bytes": export.size,
            "file": export.filename,
        },
    )


def response(export: ExportFile) -> Response:
    """The file as an attachment, streamed from the temporary file (closed when sent)."""
    resp = send_file(
        export.handle,
        mimetype=export.mimetype,
        as_attachment=True,
        download_name=export.filename,
        conditional=False,
        etag=False,
    )
    digest = base64.b64encode(bytes.fromhex(export.sha256)).decode()
    resp.headers["Repr-Digest"] = f"sha-256=:{digest}:"
    resp.headers["Content-Length"] = str(export.size)
    return resp
