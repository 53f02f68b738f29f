"""Canonical form and hashing of audit rows: what `verify` recomputes.

The canonical form is the row as JSON with sorted keys, compact separators and UTF-8 text
(`json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)`); `row_hash`
computes it so, and every stored hash was made so. The full walk (audit/services.py) builds
the same bytes faster, the database writing the fixed fields and orjson sorting `changes`;
where they would write a value differently (orjson writes 1e-05 as `0.00001` and refuses
integers past 64 bits) the hashes differ and the walk recomputes that row with `row_hash`
before calling it bad.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """The value as it is stored in `changes` (and therefore hashed)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, datetime):
        return format_at(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return str(value)


def canonical_text(value: Any) -> str:
    """JSON as the chain hashes it: sorted keys, compact separators, UTF-8 text. Audit rows
    store their `changes` so (audit/models.py), rows written before decision 0027 as
    `json.dumps` wrote them by default (keys in the order given, spaces after separators)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_at(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(
    *,
    at: datetime,
    actor_id: int | None,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None,
    changes: dict[str, Any],
    reason: str | None,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        {
            "at": format_at(at),
            "actor_id": actor_id,
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "changes": changes,
            "reason": reason,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
