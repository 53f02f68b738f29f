"""Deny by default: every route declares the roles it admits, or is explicitly public."""

from trialmgr.auth.models import ROLES

# Served by Flask and flask-smorest themselves: static files and the OpenAPI document.
BUILT_IN = {"static", "api-docs.openapi_json"}
PUBLIC = {
    "auth.login",
    "auth_api.create_token",
    "dashboard.health",
    "dashboard.api_docs",
    # a trial's opt-in summary for patient organisations (404 unless published)
    "milestones.public_trial",
    "milestones_api.public_trial",
}


def test_every_route_declares_roles_or_is_public(app):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in BUILT_IN:
            continue
        view = app.view_functions[rule.endpoint]
        roles = getattr(view, "_roles", None)
        if getattr(view, "_public", False):
            continue
        if not roles:
            missing.append(str(rule))
        else:
            assert set(roles) <= set(ROLES), rule
    assert missing == [], f"routes without a role declaration: {missing}"


def test_only_login_health_docs_and_public_summaries_are_public(app):
    public = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "_public", False)
    }
    assert public == PUBLIC


def test_api_route_without_token_answers_401_problem(api):
    resp = api.get("/users")
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_page_without_session_redirects_to_login(client):
    resp = client.get("/audit")
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"]
