"""The HL7 FHIR R4B export: a `collection` Bundle (JSON) or one resource per line (NDJSON),
streamed: the study, its sites (Location and Organization) and the product first, then each
chunk of subjects (Patient, ResearchSubject, Consent, AdverseEvent, Observation) built
through `fhir.resources` from plain rows, written and dropped."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from trialmgr.enrollment.models import Subject, Trial
from trialmgr.exports.services import fhir_resources as fr
from trialmgr.exports.services.files import HashingSink
from trialmgr.exports.services.records import records_of
from trialmgr.exports.services.roster import chunks, roster
from trialmgr.extensions import db
from trialmgr.partners.models import Partner, Site

CHUNK = 500
# The records the resources are made of (visits and dosings are not exported as resources).
_KINDS = ("subject", "consent", "adverse_event", "lab_result", "efficacy_measurement")
MIMETYPES = {"json": "application/fhir+json", "ndjson": "application/fhir+ndjson"}


def _dumps(value: Any) -> bytes:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"))` as UTF-8, written by
    orjson (the same bytes for what resources hold: str keys, str, int, bool, None and the
    floats `_number` leaves plain; several times faster). What orjson refuses (an
    `ExactFloat`, an integer past 64 bits) is written by json.dumps."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class _Writer:
    """Resources out, as Bundle entries or NDJSON lines, counted by type."""

    def __init__(self, sink: HashingSink, fmt: str, base: str) -> None:
        self.sink, self.fmt, self.base = sink, fmt, base.rstrip("/")
        self.counts: Counter[str] = Counter()

    def open(self, trial: Trial, created: datetime) -> None:
        if self.fmt == "json":
            head = {
                "resourceType": "Bundle",
                "id": f"{fr.study_id(trial)}-{created:%Y%m%d%H%M%S}",
                "type": "collection",
                "timestamp": created.isoformat(),
            }
            self.sink.text(json.dumps(head)[:-1] + ', "entry": [\n')

    def add(self, resource: fr.Resource) -> None:
        kind = resource["resourceType"]
        if kind not in self.counts:
            fr.validate(resource)  # the first of each type, through fhir.resources R4B
        body = _dumps(resource)
        if self.fmt == "json":
            link = f"{self.base}/fhir/{kind}/{resource['id']}"
            # json.dumps' default (ASCII) escapes, as the Bundle always wrote its fullUrl
            ascii_only = link.isascii() and link.isprintable()
            url = orjson.dumps(link) if ascii_only else json.dumps(link).encode()
            sep = b",\n" if self.counts.total() else b""
            self.sink.write(b"".join((sep, b'{"fullUrl": ', url, b', "resource": ', body, b"}")))
        else:
            self.sink.write(body + b"\n")
        self.counts[kind] += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.sink.text("\n]}\n")


def _sites(trial: Trial) -> list[Any]:
    return list(
        db.session.execute(
            sa.select(
                Site.code,
                Site.name,
                Site.status,
                Site.country,
                Partner.id,
                Partner.name,
                Partner.short_name,
                Partner.country,
            )
            .join(Partner, Partner.id == Site.partner_id)
            .where(Site.id.in_(sa.select(Subject.site_id).where(Subject.trial_id == trial.id)))
            .order_by(Site.code)
        )
    )


def write(
    sink: HashingSink, trial: Trial, fmt: str, base: str, created: datetime
) -> dict[str, int]:
    """Write the export; returns the count of resources of each type."""
    out = _Writer(sink, fmt, base)
    out.open(trial, created)
    sites = _sites(trial)
    out.add(fr.research_study(trial, [s[0] for s in sites]))
    partners: set[int] = set()
    for code, name, status, country, pid, pname, short, pcountry in sites:
        if pid not in partners:
            partners.add(pid)
            out.add(fr.organization(pid, pname, short, pcountry))
        out.add(fr.location(code, name, status, country, pid))
    out.add(fr.product(trial))
    for batch in chunks(roster(trial.id), CHUNK):
        rows = records_of([s.id for s in batch], _KINDS)
        for info in batch:
            sid = info.id
            consents = rows["consent"].get(sid, [])
            out.add(fr.patient(info))
            latest = consents[-1].id if consents else None
            out.add(fr.research_subject(trial, info, rows["subject"][sid][0], latest))
            for c in consents:
                out.add(fr.consent(trial, info, c))
            for ae in rows["adverse_event"].get(sid, ()):
                out.add(fr.adverse_event(trial, info, ae))
            for lab in rows["lab_result"].get(sid, ()):
                out.add(fr.lab_observation(info, lab))
            for m in rows["efficacy_measurement"].get(sid, ()):
                out.add(fr.efficacy_observation(info, m))
    out.close()
    return dict(out.counts)
