"""Home pages per role; a dosing pause is visible on every page."""

import pytest

from tests.builders import world
from tests.factories import login_page


@pytest.mark.parametrize("role", ["admin", "consortium_lead", "safety_monitor", "coordinator"])
def test_each_role_has_a_home_page(app, api, role):
    w = world(api)
    user = api.as_role(role, site_ids=[w["site"]["id"]] if role == "coordinator" else None).user
    client = app.test_client()
    login_page(client, user["email"])
    page = client.get("/")
    assert page.status_code == 200
    assert b"Welcome" in page.data
    if role != "coordinator":
        assert w["trial"]["code"].encode() in page.data


def test_lead_home_shows_enrolment_against_target_and_expiring_approvals(app, api):
    w = world(api)
    client = app.test_client()
    login_page(client, w["lead"].user["email"])
    page = client.get("/").data.decode()
    assert "0 / 4" in page and "S01" in page


def test_pause_banner_on_every_page_for_every_role(app, api):
    w = world(api)
    monitor = api.as_role("safety_monitor")
    monitor.post(
        f"/trials/{w['trial']['id']}/pause", json={"reason": "grade 4 ALT increase under review"}
    )
    for user in (w["coord"].user, w["lead"].user, monitor.user):
        client = app.test_client()
        login_page(client, user["email"])
        for path in ("/", "/sites", "/account"):
            page = client.get(path).data.decode()
            assert "Dosing paused in" in page and "grade 4 ALT increase under review" in page, (
                user,
                path,
            )
