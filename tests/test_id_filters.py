"""Every id filter of every list endpoint is one field (`IdFilter`): an id beyond the
databases' integer, zero or a negative number is refused as 422 problem+json while the request
is read (never a 500 from the database, never a list as if the filter were absent)."""

import re

import pytest
from marshmallow import fields

from tests.builders import world
from trialmgr.db import INT_MAX, IdFilter

# (path, id filter): every API list with an id filter. The URL map is checked against this
# table below, so a new list with an id filter cannot be left out.
ID_FILTERS = [
    ("/sites", "partner_id"),
    ("/trials/{trial}/escalation-readiness", "cohort_id"),
    ("/screenings", "trial_id"),
    ("/screenings", "site_id"),
    ("/screenings/export", "trial_id"),
    ("/screenings/export", "site_id"),
    ("/subjects", "trial_id"),
    ("/subjects", "site_id"),
    ("/subjects", "cohort_id"),
    ("/adverse-events", "trial_id"),
    ("/adverse-events", "site_id"),
    ("/adverse-events", "cohort_id"),
    ("/labs", "trial_id"),
    ("/expedited-reports", "trial_id"),
    ("/expedited-reports", "adverse_event_id"),
    ("/trials/{trial}/safety-summary", "site_id"),
    ("/trials/{trial}/safety-summary", "cohort_id"),
    ("/trials/{trial}/safety-signals", "site_id"),
    ("/trials/{trial}/safety-signals", "cohort_id"),
    ("/efficacy-measurements", "trial_id"),
    ("/efficacy-measurements", "endpoint_id"),
    ("/efficacy-measurements", "site_id"),
    ("/efficacy-measurements", "cohort_id"),
    ("/trials/{trial}/efficacy-summary", "endpoint_id"),
    ("/trials/{trial}/efficacy-summary", "site_id"),
    ("/trials/{trial}/efficacy-summary", "cohort_id"),
    ("/trials/{trial}/feasibility", "site_id"),
    ("/trials/{trial}/consort", "site_id"),
    ("/trials/{trial}/consort", "cohort_id"),
    ("/reports", "trial_id"),
    ("/reports", "site_id"),
    ("/report-schedules", "trial_id"),
]

# Who may read each list (the first matching prefix); everything else: the consortium lead.
READERS = {"/expedited-reports": "safety_monitor", "/labs": "safety_monitor"}


def _query_params(app):
    """(path, field name, field) of every query parameter of every API GET route."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or "GET" not in rule.methods:
            continue
        view = app.view_functions[rule.endpoint]
        for param in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", []):
            if param.get("in") != "query":
                continue
            schema = param["schema"]() if isinstance(param["schema"], type) else param["schema"]
            path = re.sub(r"<int:trial_id>", "{trial}", rule.rule.removeprefix("/api/v1"))
            for name, field in schema.fields.items():
                yield path, name, field


def test_the_table_holds_every_id_filter_of_the_api(app):
    found = sorted(
        (path, name) for path, name, field in _query_params(app) if isinstance(field, IdFilter)
    )
    assert found == sorted(ID_FILTERS)


def test_every_integer_id_in_a_query_is_an_id_filter(app):
    loose = [
        (path, name)
        for path, name, field in _query_params(app)
        if (name.endswith("_id") or name.endswith("_ids"))
        and isinstance(field.inner if isinstance(field, fields.List) else field, fields.Integer)
        and not isinstance(field, IdFilter)
    ]
    assert loose == []


@pytest.fixture()
def trial_world(api):
    w = world(api)
    return {"trial": w["trial"], "api": api}


@pytest.mark.parametrize("value", [INT_MAX + 1, -1, 0])
@pytest.mark.parametrize(("path", "name"), ID_FILTERS)
def test_an_id_filter_out_of_range_is_422_problem_json(trial_world, path, name, value):
    role = next((r for p, r in READERS.items() if path.startswith(p)), "consortium_lead")
    client = trial_world["api"].as_role(role)
    url = path.format(trial=trial_world["trial"]["id"])
    resp = client.get(f"{url}?{name}={value}")
    assert resp.status_code == 422, (url, name, value, resp.status_code)
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert name in str(resp.json.get("errors")), resp.json


@pytest.mark.parametrize(
    ("path", "name"),
    [("/sites", "partner_id"), ("/screenings", "site_id"), ("/subjects", "cohort_id")],
)
def test_the_largest_id_is_still_a_filter_matching_nothing(trial_world, path, name):
    client = trial_world["api"].as_role("consortium_lead")
    resp = client.get(f"{path}?{name}={INT_MAX}")
    assert resp.status_code == 200 and resp.json == []
