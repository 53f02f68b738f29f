"""API fuzzing: schemathesis generates requests for every operation of
/api/v1/openapi.json from its documented schemas, valid ones and invalid ones, and sends
them as each role (a bearer token of the role's user), about half of them on the ids of real
records of a seeded pilot (tests/test_role_matrix.py's scene), the others on whatever ids it
draws. Every response must be documented: no 5xx, and a documented status, content type,
headers and body schema.

Bounded (FUZZ_EXAMPLES per operation, role and mode; no deadline) so that it runs in a few
minutes; `make test-e2e` runs it on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as stc
from schemathesis.specs.openapi import checks as oac

from tests.factories import make_user

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
ROLES = ("admin", "consortium_lead", "coordinator", "safety_monitor")
CHECKS = [
    stc.not_a_server_error,
    oac.status_code_conformance,
    oac.content_type_conformance,
    oac.response_schema_conformance,
    oac.response_headers_conformance,
]
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _token(api: Any, scene: dict[str, Any], role: str) -> str:
    """The role's token: a new one after any call that may have ended it (sign-outs, token
    revocations, user edits); if the fuzzing disabled the user or changed its password, a
    new user of the role (a coordinator of the scene's site) from then on."""
    tokens = scene.setdefault("tokens", {})
    if role in tokens:
        return tokens[role]
    key = {"admin": "A", "consortium_lead": "L", "coordinator": "C", "safety_monitor": "M"}[role]
    try:
        client = api.as_user(scene["actors"][key].user)
    except Exception:
        site_ids = [scene["values"]["site_id"]] if role == "coordinator" else None
        client = scene["actors"][key] = api.as_user(make_user(api.app, role, site_ids))
    tokens[role] = client.token
    return client.token


def _fuzz(operation: Any, mode: GenerationMode, role: str, api: Any, scene: Any, tally: Counter):
    @given(case=operation.as_strategy(generation_mode=mode), real_ids=st.booleans())
    @BOUNDED
    def run(case: Any, real_ids: bool) -> None:
        if real_ids and case.path_parameters:
            values = scene["values"]
            case.path_parameters = {
                name: values.get(name, value) for name, value in case.path_parameters.items()
            }
        token = _token(api, scene, role)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        try:
            response = case.call_and_validate(checks=CHECKS)
        finally:
            if case.path.startswith(("/api/v1/auth", "/api/v1/users")):
                scene["tokens"].pop(role, None)
        tally[response.status_code] += 1

    run()


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(app, api, scene, role):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    tally: Counter[int] = Counter()
    failures = {}
    no_invalid_input: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, role, api, scene, tally)
            except Unsatisfiable:
                # no request breaks its schema (e.g. a path of one free-form string)
                no_invalid_input.append(operation.label)
            except (Exception, BaseExceptionGroup) as exc:
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:3000]
    print(
        f"\nfuzz {role}: {len(operations)} operations, {sum(tally.values())} requests, "
        f"statuses {dict(sorted(tally.items()))}, {len(failures)} failing; "
        f"no invalid input possible for {no_invalid_input}"
    )
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
