"""Reading HTML forms through the same marshmallow schemas the API uses.

WTForms is only there for CSRF; a form's fields are loaded into a schema,
so a rule about a field is written once for the API and the page.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields
from werkzeug.datastructures import MultiDict

_TRUE = {"on", "true", "1", "yes", "y"}


def load_form(
    schema: Schema, form: MultiDict[str, str], extra: dict[str, Any] | None = None
) -> Any:
    """Empty inputs count as absent; a checkbox follows a hidden "false" input of the same
    name, so the last value wins; a list field present with only empty values clears it."""
    data: dict[str, Any] = {}
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        key = field.data_key or name
        if key not in form:
            continue
        if isinstance(field, fields.List):
            data[key] = [v for v in form.getlist(key) if v.strip() != ""]
        elif isinstance(field, fields.Boolean):
            data[key] = form.getlist(key)[-1].strip().lower() in _TRUE
        else:
            value = form.get(key, "")
            if value.strip() != "":
                data[key] = value.strip() if not isinstance(field, fields.String) else value
    data.update(extra or {})
    return schema.load(data)
