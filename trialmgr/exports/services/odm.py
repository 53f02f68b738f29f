"""The CDISC ODM 1.3.2 export: the study metadata (odmlib, services/odm_metadata.py), then
the clinical data of each chunk of subjects as one `ClinicalData` element, streamed: a
chunk's rows are read, written as XML and dropped, so memory stays flat whatever the number
of subjects. Subjects appear by their pseudonymous codes only. With the audit trail, each
chunk's `ClinicalData` ends with the `AuditRecords` of its subjects' records (who, when,
where, why, what changed), built with lxml.

odmlib builds the metadata; the clinical data, a few million elements at 10,000 subjects,
is written as text with every value escaped (`attr`): through odmlib's model objects it
cost tens of microseconds an element (decision 0012)."""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from lxml import etree

from trialmgr.audit.models import AuditEvent
from trialmgr.enrollment.models import (
    Trial,
)
from trialmgr.exports.services import odm_metadata as meta
from trialmgr.exports.services.files import HashingSink
from trialmgr.exports.services.records import records_of
from trialmgr.exports.services.roster import SubjectInfo, chunks, roster
from trialmgr.extensions import db

# Subjects per ClinicalData element: one chunk's elements are in memory at a time.
CHUNK = 100
# Subjects whose records are read together (one query per kind), written CHUNK at a time:
# a multiple of CHUNK, so the ClinicalData elements are the same.
READ = 10 * CHUNK
_GROUP_ITEMS = {
    form.key: tuple((name, meta.item_oid(domain, name)) for domain, name in form.items)
    for form in meta.FORMS
}
_GROUP_OIDS = {form.key: meta.group_oid(form.key) for form in meta.FORMS}
_UNITS = meta.unit_oids()
_CANONICAL = meta.item_oid("labs", "value_canonical")
_CLOSE = "</ODM>"


def value(v: Any) -> str | None:
    """An ODM item value: ISO dates, `true`/`false`, plain decimals (never 1E+2)."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return format(v.normalize(), "f")
    return str(v)


# XML attribute text: markup escaped, tab and line breaks kept as character references (a
# parser would turn them into spaces), other control characters (not allowed in XML 1.0)
# replaced by U+FFFD.
_ATTR = {
    **{c: "\ufffd" for c in range(32)},
    **{0xFFFE: "\ufffd", 0xFFFF: "\ufffd"},
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    9: "&#9;",
    10: "&#10;",
    13: "&#13;",
}
_CONTROL = {c: "\ufffd" for c in range(32) if c not in (9, 10, 13)}


_NEEDS_ESCAPE = re.compile('[\x00-\x1f&<>"\ufffe\uffff]')


def attr(text: str) -> str:
    return text.translate(_ATTR) if _NEEDS_ESCAPE.search(text) else text


def _item_text(v: Any) -> str | None:
    """`attr(value(v))`, with the common types first: only text can hold a character to
    escape (ISO dates, numbers and booleans never do)."""
    kind = type(v)
    if kind is str:
        return attr(v) if v else None
    if kind is int:
        return str(v)
    if kind is date or kind is datetime or kind is Decimal:
        return value(v)
    text = value(v)
    return None if text is None else attr(text)


@functools.cache
def _positions(group: str, fields: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """The group's item OIDs with the index of their value in rows of these fields."""
    index = {name: n for n, name in enumerate(fields)}
    return tuple((oid, index[name]) for name, oid in _GROUP_ITEMS[group] if name in index)


def _item_xml(oid: str, text: str, unit: str | None) -> str:
    """One ItemData; the canonical lab value carries its unit."""
    if unit and oid == _CANONICAL:
        return (
            f'<ItemData ItemOID="{oid}" Value="{text}">'
            f'<MeasurementUnitRef MeasurementUnitOID="{unit}"/></ItemData>'
        )
    return f'<ItemData ItemOID="{oid}" Value="{text}"/>'


def _row_items(
    row: tuple[Any, ...], positions: tuple[tuple[str, int], ...], unit: str | None = None
) -> list[str]:
    """The ItemData of a row's values that are written (`_item_xml(oid, _item_text(v),
    unit)`), with `_item_text` spelled out in the loop: a few million values at 10,000
    subjects, where a call or two each cost about a fifth of the document."""
    out = []
    for oid, n in positions:
        v = row[n]
        if v is None:
            continue
        kind = type(v)
        if kind is str:
            if not v:
                continue
            text = v.translate(_ATTR) if _NEEDS_ESCAPE.search(v) else v
        elif kind is int:
            text = str(v)
        elif kind is bool:
            text = "true" if v else "false"
        elif kind is date or kind is datetime:
            text = v.isoformat()
        elif kind is Decimal:
            text = format(v.normalize(), "f")
        else:
            other = _item_text(v)
            if other is None:
                continue
            text = other
        if unit and oid == _CANONICAL:
            out.append(_item_xml(oid, text, unit))
        else:
            out.append(f'<ItemData ItemOID="{oid}" Value="{text}"/>')
    return out


class _Subject:
    """One subject's SubjectData, written as text as its rows arrive (every value escaped
    by `attr`): a few million elements at 10,000 subjects, faster as strings than as
    element objects."""

    def __init__(self, info: SubjectInfo) -> None:
        self.info = info
        self.forms: dict[str, dict[str, list[str]]] = {}

    def group(
        self,
        event: str,
        form: str,
        group: str,
        items: dict[str, Any] | tuple[Any, ...],
        repeat: Any = None,
        unit: str | None = None,
        positions: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """One ItemGroupData: `items` by name (a dict), or a row with `positions`."""
        key = "" if repeat is None else f' ItemGroupRepeatKey="{attr(str(repeat))}"'
        parts = [f'<ItemGroupData ItemGroupOID="{_GROUP_OIDS[group]}"{key}>']
        if isinstance(items, dict):
            for name, oid in _GROUP_ITEMS[group]:
                text = _item_text(items.get(name))
                if text is not None:
                    parts.append(_item_xml(oid, text, unit))
        else:
            parts += _row_items(items, positions, unit)
        parts.append("</ItemGroupData>")
        self.forms.setdefault(event, {}).setdefault(form, []).append("".join(parts))

    def xml(self) -> str:
        site = attr(meta.site_oid(self.info.site_code))
        out = [f'<SubjectData SubjectKey="{attr(self.info.code)}"><SiteRef LocationOID="{site}"/>']
        for event, forms in self.forms.items():
            out.append(f'<StudyEventData StudyEventOID="{attr(event)}">')
            for form, groups in forms.items():
                out.append(f'<FormData FormOID="{meta.form_oid(form)}">')
                out.extend(groups)
                out.append("</FormData>")
            out.append("</StudyEventData>")
        out.append("</SubjectData>")
        return "".join(out)


# The item group each kind of row fills.
_ROW_GROUPS = {
    "dosing": "DOSING",
    "visit": "VISIT",
    "adverse_event": "AE",
    "lab_result": "LAB",
    "efficacy_measurement": "EFFICACY",
}
_Positions = dict[str, tuple[tuple[str, int], ...]]


def _row_positions(rows: dict[str, dict[int, list[Any]]]) -> _Positions:
    """Where each item's value is in a chunk's rows of each kind (one query a kind: the
    same fields in every row)."""
    out: _Positions = {}
    for kind, group in _ROW_GROUPS.items():
        first = next((r for found in rows[kind].values() for r in found), None)
        out[group] = () if first is None else _positions(group, tuple(first._fields))
    return out


def _subject_data(
    s: _Subject,
    rows: dict[str, dict[int, list[Any]]],
    visit_oids: dict[str, str],
    at: _Positions,
) -> dict[str, int]:
    sid = s.info.id
    (base,) = rows["subject"][sid]
    s.group(
        "SE.SCREENING",
        "SCREENING",
        "SCREENING",
        {
            "screened_on": base.screened_on,
            "orphacode": base.orphacode,
            "birth_year": s.info.birth_year,
            "sex": s.info.sex,
            "outcome": base.outcome,
            "fail_reason": base.fail_reason,
        },
    )
    s.group(
        "SE.SCREENING",
        "ENROLMENT",
        "ENROLMENT",
        {
            "cohort": s.info.cohort_label,
            "enrolled_on": base.enrolled_on,
            "consented_on": base.consented_on,
            "status": s.info.status,
            "withdrawn_on": base.withdrawn_on,
            "kind": base.withdrawal_kind,
            "reason": base.withdrawal_reason if base.withdrawn_on else base.end_reason,
            "on": base.ended_on,
        },
    )
    for n, c in enumerate(rows["consent"].get(sid, ()), 1):
        s.group(
            "SE.COMMON",
            "CONSENT",
            "CONSENT",
            {"version": c.version, "consented_on": c.consented_on},
            n,
        )
    for d in rows["dosing"].get(sid, ()):
        s.group("SE.DOSING", "DOSING", "DOSING", d, positions=at["DOSING"])
    for v in rows["visit"].get(sid, ()):
        s.group(visit_oids[v.name], "VISIT", "VISIT", v, positions=at["VISIT"])
    for ae in rows["adverse_event"].get(sid, ()):
        s.group("SE.COMMON", "AE", "AE", ae, ae.id, positions=at["AE"])
        for n, criterion in enumerate(ae.seriousness_criteria or (), 1):
            s.group(
                "SE.COMMON",
                "AE",
                "AE_SERIOUSNESS",
                {"seriousness_criterion": criterion},
                f"{ae.id}.{n}",
            )
    for lab in rows["lab_result"].get(sid, ()):
        s.group(
            "SE.COMMON",
            "LAB",
            "LAB",
            lab,
            lab.id,
            unit=_UNITS[lab.analyte],
            positions=at["LAB"],
        )
    for m in rows["efficacy_measurement"].get(sid, ()):
        s.group("SE.COMMON", "EFFICACY", "EFFICACY", m, m.id, positions=at["EFFICACY"])
    return {kind: len(rows[kind].get(sid, ())) for kind in rows if kind != "subject"}


_AUDITED = (
    "subject",
    "screening",
    "subject_consent",
    "dosing",
    "visit",
    "adverse_event",
    "lab_result",
    "efficacy_measurement",
)


def _audit_records(
    infos: dict[int, SubjectInfo], rows: dict[str, dict[int, list[Any]]]
) -> tuple[str, int]:
    """The audit rows of these subjects' records, as one AuditRecords element."""
    owner: dict[tuple[str, str], SubjectInfo] = {}
    for sid, info in infos.items():
        owner[("subject", str(sid))] = info
        owner[("screening", str(rows["subject"][sid][0].screening_id))] = info
        for kind, table in (
            ("consent", "subject_consent"),
            ("dosing", "dosing"),
            ("visit", "visit"),
        ):
            for r in rows[kind].get(sid, ()):
                owner[(table, str(r.id))] = info
        for kind in ("adverse_event", "lab_result", "efficacy_measurement"):
            for r in rows[kind].get(sid, ()):
                owner[(kind, str(r.id))] = info
    wanted: dict[str, list[str]] = defaultdict(list)
    for entity, entity_id in owner:
        wanted[entity].append(entity_id)
    trail = AuditEvent.__table__
    query = (
        sa.select(*trail.c)
        .where(
            sa.or_(
                *(
                    sa.and_(AuditEvent.entity == e, AuditEvent.entity_id.in_(ids))
                    for e, ids in wanted.items()
                )
            )
        )
        .order_by(AuditEvent.id)
    )
    container = etree.Element("AuditRecords")
    count = 0
    for event in db.session.execute(query):
        info = owner[(event.entity, event.entity_id or "")]
        record = etree.SubElement(
            container,
            "AuditRecord",
            EditPoint="DBAudit",
            UsedImputationMethod="No",
            ID=f"AR.{event.id}",
        )
        etree.SubElement(record, "UserRef", UserOID=meta.user_oid(event.actor_id))
        etree.SubElement(record, "LocationRef", LocationOID=meta.site_oid(info.site_code))
        etree.SubElement(record, "DateTimeStamp").text = event.at.isoformat()
        if event.reason:
            etree.SubElement(record, "ReasonForChange").text = event.reason.translate(_CONTROL)
        changes = json.dumps(event.changes, sort_keys=True, ensure_ascii=False)
        etree.SubElement(
            record, "SourceID"
        ).text = f"{event.action} {event.entity} {event.entity_id} by {info.code}: {changes}"
        count += 1
    return (etree.tostring(container, encoding="unicode") if count else ""), count


def write(sink: HashingSink, trial: Trial, with_audit: bool, created: datetime) -> dict[str, int]:
    """Write the ODM document; returns the count of each kind of record written."""
    head = meta.metadata(trial, created, with_audit).to_xml_string(xml_declaration=True)
    if not head.endswith(_CLOSE):
        raise RuntimeError("odmlib wrote an ODM root without a closing tag")
    sink.text(head[: -len(_CLOSE)])
    visit_oids = {name: f"SE.VISIT.{n}" for n, (name, _) in enumerate(meta.visit_events(trial), 1)}
    counts: dict[str, int] = defaultdict(int)
    study, mdv = meta.study_oid(trial), meta.MDV_OID
    for read in chunks(roster(trial.id), READ):
        rows = records_of([s.id for s in read])
        at = _row_positions(rows)
        for start in range(0, len(read), CHUNK):
            batch = read[start : start + CHUNK]
            sink.text(f'<ClinicalData StudyOID="{attr(study)}" MetaDataVersionOID="{mdv}">')
            for info in batch:
                subject = _Subject(info)
                for kind, n in _subject_data(subject, rows, visit_oids, at).items():
                    counts[kind] += n
                sink.text(subject.xml())
                counts["subjects"] += 1
            if with_audit:
                records, n = _audit_records({s.id: s for s in batch}, rows)
                sink.text(records)
                counts["audit_records"] += n
            sink.text("</ClinicalData>")
    sink.text(_CLOSE + "\n")
    return dict(counts)
