"""/api/v1/trials/{id}/data-dictionary and /api/v1/trials/{id}/export/...: routes thin,
options parsed by the schemas, the file built, audited and sent by exports.download."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from trialmgr.auth.policies import current_actor, roles
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.export import csv_response
from trialmgr.exports import download
from trialmgr.exports.policies import DICTIONARY_READERS, EXPORTERS
from trialmgr.exports.schemas import (
    AnalysisQuery,
    DictionaryOut,
    DictionaryQuery,
    FhirQuery,
    OdmQuery,
)
from trialmgr.exports.services import dictionary
from trialmgr.extensions import ApiBlueprint

blp = ApiBlueprint("exports_api", __name__, url_prefix="/api/v1", description="Data out")


@blp.route("/trials/<int:trial_id>/data-dictionary", methods=["GET"])
@roles(*DICTIONARY_READERS)
@blp.arguments(DictionaryQuery, location="query")
@blp.response(200, DictionaryOut)
# `?format=csv` answers the same table as CSV: both content types documented
@blp.doc(
    responses={
        "200": {
            "description": "OK",
            "content": {
                "application/json": {"schema": DictionaryOut},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)
def data_dictionary(args: dict[str, Any], trial_id: int) -> Any:
    """Every collected variable with its type, required flag, rules, unit and code list,
    read from the in-schemas the service validates with; `?format=csv` for a table."""
    trial = trials_service.get_trial(trial_id)
    if args["format"] == "csv":
        # a few hundred rows, read now: the stream runs after the request's session ended
        rows = list(dictionary.csv_rows(trial))
        return csv_response(
            f"{trial.code}-data-dictionary.csv", dictionary.CSV_HEADER, rows, bom=False
        )
    return dictionary.dictionary(trial)


@blp.route("/trials/<int:trial_id>/export/analysis.zip", methods=["GET"])
@roles(*EXPORTERS)
@blp.arguments(AnalysisQuery, location="query")
@blp.response(200, content_type="application/zip")
def export_analysis(args: dict[str, Any], trial_id: int) -> Any:
    """The de-identified analysis archive: one tidy CSV per domain, aggregate tables with
    counts below 5 suppressed, the data dictionary and a README of the method. Dates are
    shifted per subject by a secret offset (study days exact); birth year only; free text
    only with `include_free_text=1&confirm=1`. Audited with the file's sha256 (also in the
    `Repr-Digest` header)."""
    return download.send(current_actor(), "analysis", trial_id, args)


@blp.route("/trials/<int:trial_id>/export/odm", methods=["GET"])
@roles(*EXPORTERS)
@blp.arguments(OdmQuery, location="query")
@blp.response(200, content_type="application/xml")
def export_odm(args: dict[str, Any], trial_id: int) -> Any:
    """CDISC ODM 1.3.2: study metadata (events, forms, item groups, items, code lists,
    units) and the clinical data of every subject by pseudonymous code; `?audit=1` adds
    the audit trail as AuditRecords. Audited with the file's sha256."""
    return download.send(current_actor(), "odm", trial_id, args)


@blp.route("/trials/<int:trial_id>/export/fhir", methods=["GET"])
@roles(*EXPORTERS)
@blp.arguments(FhirQuery, location="query")
@blp.response(200, content_type="application/fhir+json")
def export_fhir(args: dict[str, Any], trial_id: int) -> Any:
    """HL7 FHIR R4B: a `collection` Bundle (`?format=json`, the default) or one resource a
    line (`?format=ndjson`): ResearchStudy, Organization and Location for the sites, the
    product (Medication), Patient (code, sex, birth year), ResearchSubject, Consent,
    AdverseEvent and Observation (labs with LOINC, UCUM and interpretation; efficacy).
    Audited with the file's sha256."""
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    return download.send(current_actor(), "fhir", trial_id, {**args, "base": base})
