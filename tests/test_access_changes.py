"""Access changes: a reason for role, site and activation changes; a coordinator keeps a
site; an administrator-set password is changed at the first sign-in; sites by checkboxes;
the time-zone preference is a picker."""

import re

from tests.builders import active_site
from tests.factories import PASSWORD, login_page

NEW_PASSWORD = "violet-tractor-harbour-47"


def test_role_site_and_activation_changes_need_a_reason(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    other = active_site(lead, "S02")
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    admin = api.as_role("admin")
    uid = coord.user["id"]
    for change in ({"role": "safety_monitor"}, {"site_ids": [other["id"]]}, {"active": False}):
        resp = admin.patch(f"/users/{uid}", json=change)
        assert resp.status_code == 422 and "reason" in resp.json["errors"], change
    assert admin.get(f"/users/{uid}").json["site_ids"] == [site["id"]]
    # a name is not an access change; the same sites again are not a change either
    assert admin.patch(f"/users/{uid}", json={"name": "Renamed"}).status_code == 200
    same = admin.patch(f"/users/{uid}", json={"site_ids": [site["id"]]})
    assert same.status_code == 200
    moved = admin.patch(f"/users/{uid}", json={"site_ids": [other["id"]], "reason": "moved to S02"})
    assert moved.status_code == 200 and moved.json["site_ids"] == [other["id"]]
    history = admin.get(f"/audit?entity=user_account&entity_id={uid}").json
    assert any(e["reason"] == "moved to S02" for e in history) or any(
        e["reason"] == "moved to S02" for e in admin.get("/audit").json
    )


def test_a_coordinator_without_a_site_is_refused(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    admin = api.as_role("admin")
    body = {"email": "c@example.org", "name": "C", "role": "coordinator", "password": NEW_PASSWORD}
    refused = admin.post("/users", json=body)
    assert refused.status_code == 422 and "site_ids" in refused.json["errors"]
    made = admin.post("/users", json={**body, "site_ids": [site["id"]]})
    assert made.status_code == 201
    emptied = admin.patch(f"/users/{made.json['id']}", json={"site_ids": [], "reason": "left"})
    assert emptied.status_code == 422 and "site_ids" in emptied.json["errors"]
    monitor = admin.post(
        "/users", json={**body, "email": "m@example.org", "role": "safety_monitor"}
    )
    assert monitor.status_code == 201
    to_coord = admin.patch(
        f"/users/{monitor.json['id']}", json={"role": "coordinator", "reason": "x y z"}
    )
    assert to_coord.status_code == 422 and "site_ids" in to_coord.json["errors"]


def test_an_administrator_set_password_is_changed_at_first_sign_in(app, api):
    admin = api.as_role("admin")
    made = admin.post(
        "/users",
        json={
            "email": "new@example.org",
            "name": "New",
            "role": "safety_monitor",
            "password": PASSWORD,
        },
    )
    assert made.status_code == 201
    # the API gives such an account no token
    token = app.test_client().post(
        "/api/v1/auth/tokens", json={"email": "new@example.org", "password": PASSWORD}
    )
    assert token.status_code == 403 and token.json["title"] == "Password change required"
    client = app.test_client()
    login_page(client, "new@example.org")
    home = client.get("/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/account")
    account = client.get("/account").get_data(as_text=True)
    assert 'id="must-change-password"' in account
    changed = client.post(
        "/account",
        data={"action": "password", "current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert client.get("/").status_code == 200
    again = app.test_client().post(
        "/api/v1/auth/tokens", json={"email": "new@example.org", "password": NEW_PASSWORD}
    )
    assert again.status_code == 201


def test_a_reset_by_an_administrator_must_be_changed_but_not_the_users_own(app, api):
    admin = api.as_role("admin")
    target = api.as_role("safety_monitor")
    reset = admin.patch(
        f"/users/{target.user['id']}", json={"password": NEW_PASSWORD, "reason": "forgotten"}
    )
    assert reset.status_code == 200
    client = app.test_client()
    login_page(client, target.user["email"], NEW_PASSWORD)
    assert client.get("/").status_code == 302
    own = admin.patch(f"/users/{admin.user['id']}", json={"password": "amber-lantern-quarry-93"})
    assert own.status_code == 200
    mine = app.test_client()
    login_page(mine, admin.user["email"], "amber-lantern-quarry-93")
    assert mine.get("/").status_code == 200


def test_user_form_assigns_sites_by_checkboxes(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    active_site(lead, "S02")
    coord = api.as_role("coordinator", site_ids=[site["id"]])
    admin = api.as_role("admin")
    client = app.test_client()
    login_page(client, admin.user["email"])
    html = client.get(f"/admin/users/{coord.user['id']}").get_data(as_text=True)
    assert re.search(
        r'<input class="form-check-input" type="checkbox" name="site_ids" '
        rf'value="{site["id"]}" id="f-site-S01" checked>',
        html,
    )
    assert re.search(r'id="f-site-S02"\s*>', html)  # not checked


def test_time_zone_preference_is_a_picker_of_iana_zones(app, api):
    user = api.as_role("safety_monitor").user
    client = app.test_client()
    login_page(client, user["email"])
    html = client.get("/account").get_data(as_text=True)
    picker = re.search(r'<select[^>]*id="f-timezone".*?</select>', html, re.S)[0]
    assert '<option value="Europe/Rome" >Europe/Rome</option>' in picker
    assert '<option value="UTC" selected>UTC</option>' in picker
    assert (
        '<option value="America/Argentina/Buenos_Aires" >America/Argentina/Buenos Aires</option>'
        in picker
    )
