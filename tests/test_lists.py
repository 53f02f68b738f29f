"""Every list: server-side sorting by whitelisted columns, a total count, a page-size choice,
a card layout on phones; visits due name the trial; the partner search ignores accents."""

import re

import pytest

from tests.builders import active_site, days_ago, dose, enrol, world
from tests.factories import login_page


def signed_in(app, user):
    client = app.test_client()
    login_page(client, user["email"])
    return client


def partner(lead, name, short):
    resp = lead.post(
        "/partners",
        json={"name": name, "short_name": short, "kind": "clinical_site", "country": "FR"},
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def row_ids(html, prefix):
    return re.findall(rf'<tr data-testid="[a-z-]+" id="{prefix}-([^"]+)"', html)


@pytest.mark.parametrize("query", ["hopital", "HOPITAL", "Hôpital", "hôpital necker", "necker"])
def test_partner_search_ignores_accents_and_case(app, api, query):
    lead = api.as_role("consortium_lead")
    found = partner(lead, "Hôpital Necker-Enfants malades", "NCK")
    partner(lead, "Institute of Genetics", "IG")
    assert [p["id"] for p in lead.get(f"/partners?q={query}").json] == [found["id"]]
    page = signed_in(app, lead.user).get(f"/partners?q={query}").get_data(as_text=True)
    assert row_ids(page, "partner") == [str(found["id"])]


def test_accented_search_term_finds_the_plain_name_and_an_edit_refreshes_the_search(app, api):
    lead = api.as_role("consortium_lead")
    plain = partner(lead, "Universite de Lyon", "UL")
    assert [p["id"] for p in lead.get("/partners?q=université").json] == [plain["id"]]
    lead.patch(f"/partners/{plain['id']}", json={"name": "Klinikum Köln", "reason": "renamed"})
    assert lead.get("/partners?q=universite").json == []
    assert [p["id"] for p in lead.get("/partners?q=koln").json] == [plain["id"]]


def test_search_wildcards_are_taken_literally(app, api):
    lead = api.as_role("consortium_lead")
    partner(lead, "Alpha Lab", "AL")
    assert lead.get("/partners?q=%25").json == []
    assert lead.get("/partners?q=_").json == []


def test_sites_sort_by_a_whitelisted_column_either_way_and_ignore_other_keys(app, api):
    lead = api.as_role("consortium_lead")
    for code in ("BB2", "AA1", "CC3"):
        active_site(lead, code)
    client = signed_in(app, lead.user)
    default = client.get("/sites").get_data(as_text=True)
    assert row_ids(default, "site") == ["AA1", "BB2", "CC3"]
    desc = client.get("/sites?sort=code&dir=desc").get_data(as_text=True)
    assert row_ids(desc, "site") == ["CC3", "BB2", "AA1"]
    assert 'aria-sort="descending"' in desc and 'data-sort-key="code"' in desc
    # a column outside the whitelist (or SQL) is ignored, never an error
    for bad in ("password_hash", "code;drop table site", "id"):
        resp = client.get(f"/sites?sort={bad}&dir=sideways")
        assert resp.status_code == 200
        assert row_ids(resp.get_data(as_text=True), "site") == ["AA1", "BB2", "CC3"]


def test_lists_show_the_total_and_honour_the_page_size_choice(app, api):
    lead = api.as_role("consortium_lead")
    for i in range(27):
        partner(lead, f"Partner {i:02d}", f"P{i:02d}")
    client = signed_in(app, lead.user)
    page = client.get("/partners?page_size=25").get_data(as_text=True)
    assert 'data-total="27"' in page
    assert len(row_ids(page, "partner")) == 25
    assert '<option value="25" selected>' in page
    second = client.get("/partners?page_size=25&page=2").get_data(as_text=True)
    assert len(row_ids(second, "partner")) == 2
    # a size not offered falls back to the default
    odd = client.get("/partners?page_size=3").get_data(as_text=True)
    assert len(row_ids(odd, "partner")) == 27 and '<option value="50" selected>' in odd


@pytest.mark.parametrize(
    ("path", "table_id"),
    [
        ("/partners", "partner-table"),
        ("/sites", "site-table"),
        ("/trials", "trial-table"),
        ("/screenings", "screenings"),
        ("/subjects", "subjects"),
        ("/visits/due", "visits-due"),
        ("/admin/users", "user-table"),
        ("/audit", "audit-table"),
    ],
)
def test_every_list_has_a_total_sortable_headers_and_page_sizes(app, api, path, table_id):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(30)).status_code == 201
    role = {"/visits/due": "coordinator", "/admin/users": "admin", "/audit": "admin"}.get(path)
    user = w["coord"].user if role == "coordinator" else api.as_role(role or "admin").user
    if path == "/screenings":
        user = w["coord"].user
    html = signed_in(app, user).get(path).get_data(as_text=True)
    assert 'id="list-total"' in html and 'name="page_size"' in html
    assert re.search(r'<th scope="col" class="sortable[^"]*" data-sort-key="\w+"', html)
    assert f'id="{table_id}"' in html
    if path != "/audit":  # the audit trail keeps columns (it scrolls): cells too long for cards
        assert re.search(rf'<table class="[^"]*table-cards[^"]*" id="{table_id}"', html)
        assert 'data-label="' in html


def test_visits_due_names_the_trial_and_sorts_by_subject(app, api):
    w = world(api)
    first = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], first, days_ago(30)).status_code == 201
    html = signed_in(app, w["coord"].user).get("/visits/due?sort=subject").get_data(as_text=True)
    row = re.search(r'<tr id="due-\d+".*?</tr>', html, re.S)[0]
    assert f'<td data-label="Trial">{w["trial"]["code"]}</td>' in row


def test_user_list_shows_site_codes_not_ids(app, api):
    w = world(api)
    admin = api.as_role("admin")
    html = signed_in(app, admin.user).get("/admin/users").get_data(as_text=True)
    row = re.search(
        rf'<tr data-testid="user-row" id="user-{w["coord"].user["id"]}">.*?</tr>', html, re.S
    )
    assert row and '<td data-label="Sites">S01</td>' in row[0]
