"""/api/v1/trials/{id}/endpoints, /efficacy-measurements, /trials/{id}/efficacy-summary."""

from __future__ import annotations

from typing import Any

from trialmgr.auth.policies import ANY_ROLE, MANAGERS, SITE_WORK, current_actor, roles
from trialmgr.clock import utcnow
from trialmgr.db import paginate
from trialmgr.efficacy.schemas import (
    EndpointIn,
    EndpointOut,
    MeasurementIn,
    MeasurementOut,
    MeasurementPatch,
    MeasurementQuery,
    SummaryQuery,
    SummaryRowOut,
)
from trialmgr.efficacy.services import endpoints as endpoint_service
from trialmgr.efficacy.services import measurements as measurement_service
from trialmgr.efficacy.services import summary as summary_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import ApiBlueprint, db

blp = ApiBlueprint("efficacy_api", __name__, url_prefix="/api/v1", description="Efficacy")


@blp.route("/trials/<int:trial_id>/endpoints", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, EndpointOut(many=True))
def list_endpoints(trial_id: int) -> Any:
    return endpoint_service.endpoints_of(trials_service.get_trial(trial_id).id)


@blp.route("/trials/<int:trial_id>/endpoints", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(EndpointIn)
@blp.response(201, EndpointOut)
def create_endpoint(data: dict[str, Any], trial_id: int) -> Any:
    """Define an efficacy endpoint of the trial (code unique in the trial)."""
    trial = trials_service.get_trial(trial_id)
    return endpoint_service.add_endpoint(current_actor(), trial, data)


@blp.route("/efficacy-measurements", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(MeasurementQuery, location="query")
@blp.response(200, MeasurementOut(many=True))
@blp.paginate()
def list_measurements(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    """Measurements in your sites with the change from baseline (the latest baseline on or
    before the dosing day); without a baseline the change is null and `change_note` says why."""
    query = measurement_service.query(current_actor(), filters)
    return measurement_service.annotate(paginate(db.session, query, pagination_parameters))


@blp.route("/efficacy-measurements", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(MeasurementIn)
@blp.response(201, MeasurementOut)
def record_measurement(data: dict[str, Any]) -> Any:
    """Record a measurement (coordinators, their sites): not in the future on the site's
    calendar, not before consent; a baseline on or before the dosing day."""
    m = measurement_service.record(current_actor(), data, utcnow())
    db.session.flush()
    return measurement_service.annotate([m])[0]


@blp.route("/efficacy-measurements/<int:measurement_id>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, MeasurementOut)
def get_measurement(measurement_id: int) -> Any:
    return measurement_service.annotate([measurement_service.get(current_actor(), measurement_id)])[
        0
    ]


@blp.route("/efficacy-measurements/<int:measurement_id>", methods=["PATCH"])
@roles(*SITE_WORK)
@blp.arguments(MeasurementPatch)
@blp.response(200, MeasurementOut)
def update_measurement(data: dict[str, Any], measurement_id: int) -> Any:
    """Correct a measurement; the reason is required and kept in the audit trail."""
    actor = current_actor()
    m = measurement_service.update(
        actor, measurement_service.get(actor, measurement_id), data, utcnow()
    )
    return measurement_service.annotate([m])[0]


@blp.route("/trials/<int:trial_id>/efficacy-summary", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(SummaryQuery, location="query")
@blp.response(200, SummaryRowOut(many=True))
def efficacy_summary(args: dict[str, Any], trial_id: int) -> Any:
    """Per cohort and timepoint (baseline, then visits by study day): n, mean, median, min,
    max of the value and of the change from baseline, over your sites' subjects."""
    trial = trials_service.get_trial(trial_id)
    endpoint = summary_service.endpoint_for(trial, args.get("endpoint_id"))
    return summary_service.summary(current_actor(), trial, endpoint, args)
