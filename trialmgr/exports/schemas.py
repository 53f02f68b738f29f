"""Query options of the exports and the data dictionary's shape."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema


class DictionaryQuery(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class CodeOut(Schema):
    code = fields.String()
    label = fields.String()


class VariableOut(Schema):
    domain = fields.String()
    name = fields.String()
    label = fields.String()
    type = fields.String()
    required = fields.Boolean()
    rules = fields.List(fields.String())
    minimum = fields.Raw(allow_none=True)
    maximum = fields.Raw(allow_none=True)
    max_length = fields.Integer(allow_none=True)
    unit = fields.String(allow_none=True)
    codelist = fields.List(fields.Nested(CodeOut))
    free_text = fields.Boolean(
        metadata={"description": "Typed by people; left out of the analysis export by default."}
    )


class FormOut(Schema):
    domain = fields.String()
    label = fields.String()


class DictionaryOut(Schema):
    trial = fields.String()
    forms = fields.List(fields.Nested(FormOut))
    visits = fields.Dict(keys=fields.String(), values=fields.String())
    variables = fields.List(fields.Nested(VariableOut))


class AnalysisQuery(Schema):
    include_free_text = fields.Boolean(
        load_default=False,
        metadata={"description": "Add the free-text fields (needs confirm=1)."},
    )
    confirm = fields.Boolean(
        load_default=False,
        metadata={"description": "Confirms that free text may identify people."},
    )

    @validates_schema
    def _free_text_confirmed(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("include_free_text") and not data.get("confirm"):
            raise ValidationError(
                "Free text may name people or places: confirm=1 is needed to include it.",
                "confirm",
            )


class OdmQuery(Schema):
    audit = fields.Boolean(
        load_default=False, metadata={"description": "Add the audit trail as AuditRecords."}
    )


class FhirQuery(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "ndjson"]))


EXPORT_KINDS = {
    "analysis": "De-identified analysis archive (ZIP of CSV)",
    "odm": "CDISC ODM 1.3.2 (XML)",
    "fhir_json": "HL7 FHIR R4B Bundle (JSON)",
    "fhir_ndjson": "HL7 FHIR R4B (NDJSON)",
}


class ExportForm(AnalysisQuery):
    """The export page: which trial, which format, its options."""

    trial_id = fields.Integer(required=True, strict=True)
    kind = fields.String(required=True, validate=validate.OneOf(list(EXPORT_KINDS)))
    audit = fields.Boolean(load_default=False)
