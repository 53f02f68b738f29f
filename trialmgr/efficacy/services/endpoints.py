"""A trial's efficacy endpoints: part of its design, defined by administrators and
consortium leads; codes are unique within the trial."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.efficacy.models import EfficacyEndpoint
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.policies import require_manager
from trialmgr.errors import Conflict, Invalid
from trialmgr.extensions import db


def endpoints_of(trial_id: int) -> list[EfficacyEndpoint]:
    """The trial's endpoints, primary ones first, then by code."""
    return list(
        db.session.execute(
            sa.select(EfficacyEndpoint)
            .where(EfficacyEndpoint.trial_id == trial_id)
            .order_by(EfficacyEndpoint.primary.desc(), EfficacyEndpoint.code)
        ).scalars()
    )


def add_endpoint(actor: Any, trial: Trial, data: dict[str, Any]) -> EfficacyEndpoint:
    """Define an endpoint: managers only, not once the trial has ended; the code is unique
    in the trial (compared without regard to case)."""
    require_manager(actor)
    if trial.status == "ended":
        raise Conflict("The trial has ended.", title="Trial ended")
    code = data["code"].strip().upper()
    if any(e.code.upper() == code for e in endpoints_of(trial.id)):
        raise Conflict("An endpoint with this code exists.", errors={"code": ["Already used."]})
    with audit.audited(actor, action="efficacy_endpoint.add"):
        endpoint = EfficacyEndpoint(
            trial_id=trial.id,
            code=code,
            name=data["name"].strip(),
            unit=data["unit"].strip(),
            direction=data["direction"],
            primary=data.get("primary", False),
        )
        db.session.add(endpoint)
    return endpoint


def get_endpoint(trial_id: int, endpoint_id: int, field: str = "endpoint_id") -> EfficacyEndpoint:
    """An endpoint of this trial; another trial's (or none) is a field error."""
    endpoint = db.session.get(EfficacyEndpoint, endpoint_id)
    if endpoint is None or endpoint.trial_id != trial_id:
        raise Invalid(
            "Unknown endpoint.", errors={field: [f"No endpoint {endpoint_id} in this trial."]}
        )
    return endpoint


def default_endpoint(trial_id: int) -> EfficacyEndpoint | None:
    """The endpoint a summary shows when none is asked for: the first primary one, else the
    first defined."""
    endpoints = endpoints_of(trial_id)
    return endpoints[0] if endpoints else None
