"""The OpenAPI document is valid OpenAPI 3, and the docs page uses vendored files."""

from openapi_spec_validator import validate


def test_openapi_document_is_valid(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    spec = resp.json
    assert spec["openapi"].startswith("3.")
    validate(spec)
    assert "/api/v1/auth/tokens" in spec["paths"]
    assert "/api/v1/users/{user_id}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/auth/tokens"]["post"]["security"] == []


def test_docs_page_loads_no_cdn(client):
    page = client.get("/api/v1/docs").data.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert "https://" not in page and "http://" not in page


def test_the_api_is_documented_only_when_the_document_is_asked_for(app_factory):
    """Building an app (every CLI command, the scheduler, a worker) does not convert the
    schemas to OpenAPI; the first request for the document does, once."""
    from trialmgr.extensions import api

    fresh = app_factory()
    assert api.spec.to_dict().get("paths", {}) == {}
    first = fresh.test_client().get("/api/v1/openapi.json").json
    again = fresh.test_client().get("/api/v1/openapi.json").json
    assert "/api/v1/subjects" in first["paths"] and first == again


def test_error_answers_and_pagination_are_documented_as_sent(client, api):
    """Every error is problem+json with status, title, detail and errors, and the document
    says so; X-Pagination is a JSON object, documented as JSON content."""
    import json

    import jsonschema

    spec = client.get("/api/v1/openapi.json").json
    default = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert list(default) == ["application/problem+json"]
    problem = spec["components"]["schemas"]["ProblemOut"]
    assert set(problem["required"]) == {"status", "title", "detail", "errors"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation["responses"]["default"] == {
                "$ref": "#/components/responses/DEFAULT_ERROR"
            }, (method, path)
    lead = api.as_role("consortium_lead")
    missing = lead.get("/trials/999")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    jsonschema.validate(missing.json, problem)
    header = spec["components"]["headers"]["PAGINATION"]
    assert list(header["content"]) == ["application/json"] and "schema" not in header
    listed = lead.get("/trials")
    assert json.loads(listed.headers["X-Pagination"])["total"] == 0
    # an operation that answers CSV on request documents both content types
    dictionary = spec["paths"]["/api/v1/trials/{trial_id}/data-dictionary"]["get"]
    assert set(dictionary["responses"]["200"]["content"]) == {"application/json", "text/csv"}


def test_building_the_app_loads_no_report_or_statistics_library(tmp_path):
    """The CLI and a worker's first request do not pay for reportlab, scipy or zxcvbn's word
    lists: they load when a report is built, an estimate computed or a password judged
    (issue 16, target 7)."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys; import wsgi; "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'reportlab', "
        "'numpy', 'matplotlib', 'zxcvbn'}); print(','.join(heavy))"
    )
    env = {
        **os.environ,
        "TRIALMGR_INSTANCE": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/probe.db",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_estimates_and_signals_still_use_scipy_when_asked():
    from trialmgr.milestones.services.stats import proportion, rate
    from trialmgr.safety.services.signals import exact_interval

    # Clopper-Pearson 3/10: 0.0667-0.6525; exact Poisson 4 events: up to 10.2416 events
    assert round(proportion(3, 10).ci_low, 4) == 0.0667
    assert round(proportion(3, 10).ci_high, 4) == 0.6525
    assert round(rate(4, 2.0).ci_high, 3) == round(10.2416 / 2, 3)
    assert exact_interval(0, 5)[0] == 0.0


def test_an_estimates_interval_is_computed_when_first_read():
    """The monthly trend shows values only: its estimates never pay for scipy's exact
    intervals, which are computed on first read (and then kept)."""
    from trialmgr.milestones.services.stats import clopper_pearson, inverse_proportion

    clopper_pearson.cache_clear()
    ratio = inverse_proportion(10, 3)  # 10 screened per 3 enrolled
    assert ratio.value == 10 / 3 and "_interval" not in ratio.__dict__
    assert clopper_pearson.cache_info().misses == 0
    low, high = clopper_pearson(3, 10)
    assert (ratio.ci_low, ratio.ci_high) == (1 / high, 1 / low)
