"""The new-screening form proposes the outcome its criteria answers give (the coordinator
confirms it), refuses an outcome the answers contradict, and asks for a confirmation that
restates a screening date more than 30 days back; nothing is written until confirmed."""

import re

import pytest

from tests.builders import days_ago, world
from tests.factories import login_page


def text(resp):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True)))


def screening_form(w, **kw):
    return {
        "trial_id": w["trial"]["id"],
        "site_id": w["site"]["id"],
        "screened_on": days_ago(5).isoformat(),
        "orphacode": "98879",
        "birth_year": "2014",
        "sex": "F",
        **kw,
    }


def replayed(resp, form_id="confirm-form"):
    """The hidden fields of one form of the confirmation page (confirm or cancel), as the
    browser would send them."""
    html = resp.get_data(as_text=True)
    start = html.index(f'id="{form_id}"')
    form = html[start : html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def chosen(html, name):
    """The value of the checked radio of a group."""
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"[^>]*checked', html)
    return match.group(1) if match else None


@pytest.fixture()
def w(api):
    return world(api)


@pytest.fixture()
def page(app, w):
    client = app.test_client()
    assert login_page(client, w["coord"].user["email"]).status_code == 302
    return client


def test_the_form_offers_the_outcome_from_the_answers_in_a_labelled_group(page):
    html = page.get("/screenings/new").get_data(as_text=True)
    assert '<legend class="h6">Outcome' in html
    assert 'id="screening-outcome-derived" value="" checked' in html


def test_outcome_from_the_answers_is_shown_and_saved_once_confirmed(w, page):
    resp = page.post("/screenings/new", data=screening_form(w, crit_I1="yes", crit_E1="no"))
    assert resp.status_code == 200
    assert "Outcome from the answers: eligible — confirm" in text(resp)
    assert w["coord"].get("/screenings").json == []  # nothing written yet
    fields = replayed(resp)
    assert fields["outcome"] == "eligible" and fields["confirmed"] == "yes"

    done = page.post("/screenings/new", data=fields)
    assert done.status_code == 302
    stored = w["coord"].get("/screenings").json
    assert [(s["outcome"], s["answers"]) for s in stored] == [
        ("eligible", {"I1": True, "E1": False})
    ]


def test_a_met_exclusion_is_proposed_as_a_screen_failure_naming_it(w, page):
    resp = page.post("/screenings/new", data=screening_form(w, crit_I1="yes", crit_E1="yes"))
    assert "Outcome from the answers: screen failed (unmet: E1)" in text(resp)
    assert w["coord"].get("/screenings").json == []
    done = page.post("/screenings/new", data=replayed(resp))
    assert done.status_code == 302
    stored = w["coord"].get("/screenings").json
    assert [(s["outcome"], s["failed_criteria"]) for s in stored] == [("screen_failed", ["E1"])]


def test_an_outcome_contradicting_the_answers_is_refused_and_nothing_written(w, page):
    form = screening_form(w, crit_I1="no", crit_E1="no", outcome="eligible")
    resp = page.post("/screenings/new", data=form)
    assert resp.status_code == 422
    assert "Not eligible: unmet I1" in text(resp)
    assert "Outcome from the answers: screen failed (unmet: I1)" in text(resp)
    assert 'id="confirm-form"' not in resp.get_data(as_text=True)
    # even sent as confirmed, the service refuses it
    again = page.post("/screenings/new", data={**form, "confirmed": "yes"})
    assert again.status_code == 422
    assert w["coord"].get("/screenings").json == []


def test_a_date_more_than_30_days_back_is_restated_and_waits_for_the_confirmation(w, page):
    back = days_ago(31).isoformat()
    form = screening_form(w, screened_on=back, crit_I1="yes", crit_E1="no", outcome="eligible")
    resp = page.post("/screenings/new", data=form)
    assert resp.status_code == 200
    assert f"Screened on {back}: 31 days before today at S01" in text(resp)
    assert w["coord"].get("/screenings").json == []
    done = page.post("/screenings/new", data=replayed(resp))
    assert done.status_code == 302
    assert [s["screened_on"] for s in w["coord"].get("/screenings").json] == [back]


def test_a_date_30_days_back_with_a_chosen_outcome_saves_directly(w, page):
    on = days_ago(30).isoformat()
    form = screening_form(w, screened_on=on, crit_I1="yes", crit_E1="no", outcome="eligible")
    resp = page.post("/screenings/new", data=form)
    assert resp.status_code == 302
    assert [s["screened_on"] for s in w["coord"].get("/screenings").json] == [on]


def test_cancelling_a_date_confirmation_returns_the_form_as_typed(w, page):
    back = days_ago(45).isoformat()
    form = screening_form(
        w, screened_on=back, crit_I1="yes", crit_E1="no", outcome="eligible", consented_on=""
    )
    restated = page.post("/screenings/new", data=form)
    assert 'id="confirm-form"' in restated.get_data(as_text=True)
    cancelled = page.post("/screenings/new", data=replayed(restated, "cancel-form"))
    assert cancelled.status_code == 200
    html = cancelled.get_data(as_text=True)
    assert 'id="confirm-form"' not in html and 'id="error-summary"' not in html
    assert re.search(rf'id="screening-screened_on"[^>]*value="{back}"', html)
    assert re.search(r'id="screening-birth_year"[^>]*value="2014"', html)
    assert re.search(r'<option value="F" selected', html)
    assert chosen(html, "crit_I1") == "yes" and chosen(html, "crit_E1") == "no"
    assert chosen(html, "outcome") == "eligible"
    assert w["coord"].get("/screenings").json == []


def test_cancelling_a_derived_outcome_leaves_the_outcome_to_the_answers(w, page):
    form = screening_form(w, crit_I1="yes", crit_E1="yes", birth_year="2013")
    restated = page.post("/screenings/new", data=form)
    assert replayed(restated)["outcome"] == "screen_failed"  # what confirming would save
    cancelled = page.post("/screenings/new", data=replayed(restated, "cancel-form"))
    assert cancelled.status_code == 200
    html = cancelled.get_data(as_text=True)
    assert 'id="confirm-form"' not in html
    assert re.search(r'id="screening-birth_year"[^>]*value="2013"', html)
    assert chosen(html, "crit_I1") == "yes" and chosen(html, "crit_E1") == "yes"
    assert chosen(html, "outcome") == ""  # still "from the answers", as typed
    assert w["coord"].get("/screenings").json == []


def test_the_date_confirmation_restates_dates_in_the_readers_format(w, page):
    saved = page.post(
        "/account", data={"action": "profile", "date_format": "DD/MM/YYYY", "timezone": "UTC"}
    )
    assert saved.status_code == 302
    back = days_ago(31)
    form = screening_form(
        w, screened_on=back.isoformat(), crit_I1="yes", crit_E1="no", outcome="eligible"
    )
    resp = page.post("/screenings/new", data=form)
    assert resp.status_code == 200
    assert f"Screened on {back:%d/%m/%Y}: 31 days before today at S01" in text(resp)
    assert f"Screened on {back.isoformat()}" not in text(resp)
