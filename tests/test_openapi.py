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
