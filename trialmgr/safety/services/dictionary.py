"""The consortium's MedDRA dictionary: MedDRA is licensed, so trialmgr ships none; an
administrator imports the preferred terms of their own licence from a CSV file
(columns pt_code, pt_term, soc, soc_code) and coordinators pick terms from it. Without a
dictionary the system organ class is free text."""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.auth.models import ADMIN
from trialmgr.errors import Forbidden, Invalid
from trialmgr.extensions import db
from trialmgr.safety.models import MeddraTerm

COLUMNS = ("pt_code", "pt_term", "soc", "soc_code")
MAX_ROWS = 200_000


def import_csv(actor: Any, content: bytes) -> dict[str, int]:
    """Add or update terms from a UTF-8 CSV (a BOM is fine); the whole file or nothing."""
    if actor.role != ADMIN:
        raise Forbidden("Only administrators import the dictionary.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid("The file is not UTF-8 text.", errors={"file": ["Not UTF-8."]}) from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS[:3] if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(
            "The CSV lacks columns.", errors={"file": [f"Missing: {', '.join(missing)}."]}
        )
    rows: dict[str, dict[str, str | None]] = {}
    for number, row in enumerate(reader, start=2):
        if number > MAX_ROWS:
            raise Invalid("Too many rows.", errors={"file": [f"At most {MAX_ROWS}."]})
        code, term, soc = (row.get(c, "").strip() for c in COLUMNS[:3])
        if not code or not term or not soc or len(code) > 20 or len(term) > 200 or len(soc) > 200:
            raise Invalid("A row is incomplete or too long.", errors={"file": [f"Line {number}."]})
        rows[code] = {
            "pt_term": term,
            "soc": soc,
            "soc_code": (row.get("soc_code") or "").strip() or None,
        }
    existing = {
        t.pt_code: t
        for t in db.session.execute(
            sa.select(MeddraTerm).where(MeddraTerm.pt_code.in_(list(rows)))
        ).scalars()
    }
    added = updated = 0
    for code, values in rows.items():
        term = existing.get(code)
        if term is None:
            db.session.add(MeddraTerm(pt_code=code, **values))
            added += 1
        elif any(getattr(term, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(term, key, value)
            updated += 1
    audit.record(actor, "meddra.import", "meddra_term", None, {"added": added, "updated": updated})
    return {"added": added, "updated": updated, "rows": len(rows)}


def loaded() -> bool:
    """Whether a dictionary has been imported (without one the SOC is free text)."""
    return db.session.execute(sa.select(MeddraTerm.id).limit(1)).first() is not None


def search(text: str, limit: int = 20) -> list[MeddraTerm]:
    like = f"%{text.strip().lower()}%"
    return list(
        db.session.execute(
            sa.select(MeddraTerm)
            .where(
                sa.or_(
                    sa.func.lower(MeddraTerm.pt_term).like(like), MeddraTerm.pt_code == text.strip()
                )
            )
            .order_by(MeddraTerm.pt_term)
            .limit(limit)
        ).scalars()
    )
