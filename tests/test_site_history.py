"""Sites judged as they were on the event's date (issue 8, items 1-3): the approval in force
is the newest per kind, the status has a history, and every "today" is the site's own."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, available_timezones

import pytest
import sqlalchemy as sa

from tests.builders import TODAY, active_site, days_ago, dose, enrol, world
from trialmgr.auth.models import SystemActor
from trialmgr.errors import Conflict, Invalid
from trialmgr.extensions import db
from trialmgr.partners.models import Site, SiteApproval, SiteStatusChange
from trialmgr.partners.services import approvals as approvals_service
from trialmgr.partners.services import sites as sites_service
from trialmgr.partners.services import status as status_service
from trialmgr.partners.zones import COUNTRY_ZONES, suggested_zone

SYSTEM = SystemActor(email="system:test")


def iso(d: date) -> str:
    return d.isoformat()


def _irb_of(lead, site_id, reference):
    return next(
        a for a in lead.get(f"/sites/{site_id}/approvals").json if a["reference"] == reference
    )


def _renew_irb(lead, site, granted, expires=None, reference="S01-irb-renewal"):
    body = {"kind": "irb", "reference": reference, "granted_on": iso(granted)}
    if expires:
        body["expires_on"] = iso(expires)
    resp = lead.post(f"/sites/{site['id']}/approvals", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def _screening_today(w):
    return w["coord"].post(
        "/screenings",
        json={
            "trial_id": w["trial"]["id"],
            "site_id": w["site"]["id"],
            "screened_on": iso(TODAY),
            "orphacode": 98879,
            "birth_year": 2015,
            "sex": "M",
            "answers": {"I1": True, "E1": False},
        },
    )


# --- 1. the approval in force is the newest per kind -------------------------------------


def test_withdrawing_a_renewed_irb_closes_the_site_from_the_withdrawal_date(api):
    """The original IRB letter never lapses, yet withdrawing its renewal closes the site."""
    w = world(api)
    lead, coord, site = w["lead"], w["coord"], w["site"]
    early, late = enrol(coord, w["trial"], site), enrol(coord, w["trial"], site)
    renewal = _renew_irb(lead, site, days_ago(100))
    withdrawn = lead.patch(
        f"/approvals/{renewal['id']}",
        json={"withdrawn_on": iso(days_ago(10)), "reason": "EC suspended its opinion"},
    )
    assert withdrawn.status_code == 200

    body = lead.get(f"/sites/{site['id']}").json
    assert body["open_for_screening"] is False and body["missing_approvals"] == ["irb"]
    screening = _screening_today(w)
    assert screening.status_code == 409
    assert screening.json["detail"] == (
        f"Screening not allowed on {iso(TODAY)}: site S01's IRB approval was withdrawn on "
        f"{iso(days_ago(10))}."
    )
    assert screening.json["errors"]["missing"] == ["irb"]
    # a dosing done before the withdrawal is accepted when entered; one after it is not
    assert dose(coord, early, days_ago(20)).status_code == 201
    refused = dose(coord, late, days_ago(5))
    assert refused.status_code == 409
    assert refused.json["detail"].startswith(f"Dosing not allowed on {iso(days_ago(5))}: ")
    assert "IRB approval was withdrawn on" in refused.json["detail"]


def test_the_approval_in_force_is_shown_in_the_api_and_on_the_page(app, api):
    w = world(api)
    lead, site = w["lead"], w["site"]
    renewal = _renew_irb(lead, site, days_ago(30), days_ago(-335))
    approvals = {a["reference"]: a for a in lead.get(f"/sites/{site['id']}").json["approvals"]}
    assert approvals["S01-irb"]["in_force"] is False
    assert approvals["S01-irb-renewal"]["in_force"] is True
    assert all(a["in_force"] for ref, a in approvals.items() if ref != "S01-irb")
    assert lead.get(f"/sites/{site['id']}/approvals").json[0].keys() >= {"in_force"}

    from tests.factories import login_page

    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    renewal_row = html.split(f'id="approval-{renewal["id"]}"')[1].split("</tr>")[0]
    old_row = html.split(f'id="approval-{_irb_of(lead, site["id"], "S01-irb")["id"]}"')[1]
    assert "in force" in renewal_row
    assert "superseded" in old_row.split("</tr>")[0]


def test_same_day_renewals_the_later_record_is_in_force(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    first = _renew_irb(lead, site, days_ago(5), reference="R-A")
    second = _renew_irb(lead, site, days_ago(5), reference="R-B")
    lead.patch(
        f"/approvals/{second['id']}",
        json={"withdrawn_on": iso(days_ago(2)), "reason": "Issued in error"},
    )
    with app.app_context():
        row = db.session.get(Site, site["id"])
        assert approvals_service.in_force(row, "irb", days_ago(3)).id == second["id"]
        assert approvals_service.in_force(row, "irb", days_ago(6)).reference == "S01-irb"
        assert approvals_service.missing_approvals(row, days_ago(3)) == []
        assert approvals_service.missing_approvals(row, days_ago(2)) == ["irb"]
    assert first["id"] < second["id"]


def test_an_older_letter_rules_until_its_renewal_is_granted(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    with app.app_context():
        db.session.execute(
            sa.update(SiteApproval)
            .where(SiteApproval.kind == "ibc")
            .values(expires_on=days_ago(50))
        )
        db.session.commit()
    lead.post(
        f"/sites/{site['id']}/approvals",
        json={"kind": "ibc", "reference": "IBC-2", "granted_on": iso(days_ago(40))},
    )
    with app.app_context():
        row = db.session.get(Site, site["id"])
        sites_service.assert_site_open(row, days_ago(50), "dosing")
        with pytest.raises(Conflict) as lapsed:
            sites_service.assert_site_open(row, days_ago(45), "dosing")
        assert lapsed.value.detail == (
            f"Dosing not allowed on {iso(days_ago(45))}: site S01's IBC approval expired on "
            f"{iso(days_ago(50))}."
        )
        sites_service.assert_site_open(row, days_ago(40), "dosing")


def test_a_withdrawal_cannot_precede_the_grant(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    irb = _irb_of(lead, site["id"], "S01-irb")
    resp = lead.patch(
        f"/approvals/{irb['id']}", json={"withdrawn_on": "2000-01-01", "reason": "typo check"}
    )
    assert resp.status_code == 422 and "withdrawn_on" in resp.json["errors"]


# --- 2. site status history ---------------------------------------------------------


def test_dosing_done_while_active_is_accepted_after_a_suspension_today(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    other = enrol(w["coord"], w["trial"], w["site"])
    suspended = w["lead"].post(
        f"/sites/{w['site']['id']}/suspend", json={"reason": "Monitoring findings"}
    )
    assert suspended.status_code == 200 and suspended.json["status"] == "suspended"
    assert dose(w["coord"], subject, days_ago(50)).status_code == 201
    assert suspended.json["status_since"] == iso(TODAY)
    today = dose(w["coord"], other, TODAY, hour=0)
    assert today.status_code == 409
    assert today.json["detail"] == f"Dosing not allowed: site S01 suspended since {iso(TODAY)}."


def test_dosing_dated_during_a_suspension_is_refused_naming_dosing_and_the_date(api):
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    resp = w["lead"].post(
        f"/sites/{w['site']['id']}/suspend",
        json={"reason": "Pharmacy deviation", "on": iso(days_ago(20))},
    )
    assert resp.status_code == 200
    refused = dose(w["coord"], subject, days_ago(10))
    assert refused.status_code == 409 and refused.json["title"] == "Site not open"
    assert refused.json["detail"] == (
        f"Dosing not allowed: site S01 suspended since {iso(days_ago(20))}."
    )
    assert "screening" not in refused.json["detail"].lower()
    assert dose(w["coord"], subject, days_ago(21)).status_code == 201
    assert w["lead"].get(f"/sites/{w['site']['id']}").json["status_since"] == iso(days_ago(20))


def test_the_gate_judges_the_state_on_the_events_date(app, api):
    """Service level: assert_site_open(site, day, operation) as the enrolment domain calls it."""
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01", activated_on=days_ago(400))
    lead.post(f"/sites/{site['id']}/suspend", json={"reason": "Audit", "on": iso(TODAY)})
    with app.app_context():
        row = db.session.get(Site, site["id"])
        for operation in ("screening", "enrolment", "dosing"):
            sites_service.assert_site_open(row, days_ago(50), operation)
        with pytest.raises(Conflict) as refused:
            sites_service.assert_site_open(row, TODAY, "dosing")
        assert refused.value.detail == f"Dosing not allowed: site S01 suspended since {iso(TODAY)}."
        assert refused.value.errors == {"site": [f"Site suspended since {iso(TODAY)}."]}


def test_reactivation_reopens_the_site_from_its_date(api):
    w = world(api, stagger_days=1)
    lead, coord, site = w["lead"], w["coord"], w["site"]
    a, b = enrol(coord, w["trial"], site), enrol(coord, w["trial"], site)
    lead.post(f"/sites/{site['id']}/suspend", json={"reason": "Audit", "on": iso(days_ago(30))})
    reactivated = lead.post(
        f"/sites/{site['id']}/activate",
        json={"activated_on": iso(days_ago(10)), "reason": "CAPA closed"},
    )
    assert reactivated.status_code == 200 and reactivated.json["status"] == "active"
    assert reactivated.json["activated_on"] == site["activated_on"]  # the first activation
    during = dose(coord, a, days_ago(20))
    assert during.status_code == 409
    assert during.json["detail"] == (
        f"Dosing not allowed on {iso(days_ago(20))}: site S01 was suspended from "
        f"{iso(days_ago(30))} until its reactivation on {iso(days_ago(10))}."
    )
    assert dose(coord, a, days_ago(5)).status_code == 201
    assert dose(coord, b, days_ago(40)).status_code == 201
    history = lead.get(f"/sites/{site['id']}/status-history")
    assert history.status_code == 200
    assert [(c["change"], c["status"], c["on"], c["reason"]) for c in history.json] == [
        ("activation", "active", site["activated_on"], None),
        ("suspension", "suspended", iso(days_ago(30)), "Audit"),
        ("reactivation", "active", iso(days_ago(10)), "CAPA closed"),
    ]
    assert all(c["recorded_by"] == lead.user["email"] for c in history.json)


def test_reactivation_cannot_precede_the_suspension(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    lead.post(f"/sites/{site['id']}/suspend", json={"reason": "Audit", "on": iso(days_ago(10))})
    early = lead.post(f"/sites/{site['id']}/activate", json={"activated_on": iso(days_ago(11))})
    assert early.status_code == 422 and "activated_on" in early.json["errors"]
    assert lead.get(f"/sites/{site['id']}").json["status"] == "suspended"


def test_suspension_dates_are_checked(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01", activated_on=days_ago(100))
    future = lead.post(
        f"/sites/{site['id']}/suspend", json={"reason": "Audit", "on": iso(days_ago(-1))}
    )
    assert future.status_code == 422 and "on" in future.json["errors"]
    before = lead.post(
        f"/sites/{site['id']}/suspend", json={"reason": "Audit", "on": iso(days_ago(101))}
    )
    assert before.status_code == 422 and "on" in before.json["errors"]
    assert lead.get(f"/sites/{site['id']}/status-history").json[-1]["change"] == "activation"


def test_closure_is_final_and_judged_from_its_date(api):
    w = world(api, stagger_days=1)
    lead, coord, site = w["lead"], w["coord"], w["site"]
    a, b = enrol(coord, w["trial"], site), enrol(coord, w["trial"], site)
    closed = lead.post(
        f"/sites/{site['id']}/close", json={"reason": "Recruitment ended", "on": iso(days_ago(5))}
    )
    assert closed.status_code == 200 and closed.json["closed_on"] == iso(days_ago(5))
    refused = dose(coord, a, days_ago(3))
    assert refused.status_code == 409
    assert refused.json["detail"] == f"Dosing not allowed: site S01 closed on {iso(days_ago(5))}."
    assert dose(coord, b, days_ago(8)).status_code == 201  # done while open, entered late
    assert lead.post(f"/sites/{site['id']}/activate", json={}).status_code == 409
    assert lead.post(f"/sites/{site['id']}/suspend", json={"reason": "again"}).status_code == 409
    assert lead.post(f"/sites/{site['id']}/close", json={"reason": "again"}).status_code == 409
    changes = [c["change"] for c in lead.get(f"/sites/{site['id']}/status-history").json]
    assert changes == ["activation", "closure"]


def test_a_date_before_the_first_activation_is_422_on_the_events_field(app, api):
    w = world(api)
    with app.app_context():
        site = db.session.get(Site, w["site"]["id"])
        with pytest.raises(Invalid) as early:
            sites_service.assert_site_open(site, days_ago(401), "dosing")
        assert "dosed_at" in early.value.errors
        sites_service.check_not_before_activation("screened_on", days_ago(400), site)
        with pytest.raises(Invalid):
            sites_service.check_not_before_activation("screened_on", days_ago(401), site)


def test_site_state_on_reads_the_history(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01", activated_on=days_ago(100))
    lead.post(f"/sites/{site['id']}/suspend", json={"reason": "Audit", "on": iso(days_ago(60))})
    lead.post(f"/sites/{site['id']}/activate", json={"activated_on": iso(days_ago(60))})
    lead.post(f"/sites/{site['id']}/suspend", json={"reason": "Again", "on": iso(days_ago(30))})
    lead.post(f"/sites/{site['id']}/activate", json={"activated_on": iso(days_ago(20))})
    lead.post(f"/sites/{site['id']}/close", json={"reason": "End", "on": iso(days_ago(10))})
    with app.app_context():
        row = db.session.get(Site, site["id"])
        states = {
            n: sites_service.site_state_on(row, days_ago(n))
            for n in (101, 100, 61, 60, 31, 30, 21, 20, 11, 10, 0)
        }
    assert states == {
        101: "pending",
        100: "active",
        61: "active",
        60: "active",  # suspended and reactivated the same day
        31: "active",
        30: "suspended",
        21: "suspended",
        20: "active",
        11: "active",
        10: "closed",
        0: "closed",
    }


def test_months_open_skips_suspensions(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01", activated_on=days_ago(400))
    lead.post(f"/sites/{site['id']}/suspend", json={"reason": "Audit", "on": iso(days_ago(100))})
    lead.post(f"/sites/{site['id']}/activate", json={"activated_on": iso(days_ago(40))})
    body = lead.get(f"/sites/{site['id']}").json
    assert body["months_open"] == pytest.approx((300 + 40) / (365.25 / 12), abs=0.01)
    with app.app_context():
        row = db.session.get(Site, site["id"])
        assert sites_service.months_open(row, days_ago(100)) == pytest.approx(300 / (365.25 / 12))
        assert sites_service.months_open(row, days_ago(50)) == pytest.approx(300 / (365.25 / 12))
        assert sites_service.months_open(row, days_ago(401)) == 0.0


def test_months_open_skips_an_approval_lapse(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01", activated_on=days_ago(400))
    with app.app_context():
        db.session.execute(
            sa.update(SiteApproval)
            .where(SiteApproval.kind == "irb")
            .values(expires_on=days_ago(101))
        )
        db.session.commit()
    _renew_irb(lead, site, days_ago(40))
    with app.app_context():
        row = db.session.get(Site, site["id"])
        assert sites_service.months_open(row, TODAY) == pytest.approx((300 + 40) / (365.25 / 12))


def test_status_history_is_audited_and_scoped(api):
    lead = api.as_role("consortium_lead")
    s1 = active_site(lead, "S01")
    s2 = active_site(lead, "S02")
    lead.post(f"/sites/{s1['id']}/suspend", json={"reason": "Audit"})
    events = lead.get("/audit?entity=site_status_change").json
    assert {e["action"] for e in events} == {"site.activate", "site.suspend"}
    suspension = next(e for e in events if e["action"] == "site.suspend")
    assert suspension["reason"] == "Audit" and suspension["changes"]["on"]["new"] == iso(TODAY)
    coord = api.as_role("coordinator", site_ids=[s1["id"]])
    assert len(coord.get(f"/sites/{s1['id']}/status-history").json) == 2
    assert coord.get(f"/sites/{s2['id']}/status-history").status_code == 404
    assert coord.post(f"/sites/{s1['id']}/suspend", json={"reason": "mine"}).status_code == 403


def test_suspend_form_takes_a_date_and_the_page_shows_the_history(app, api):
    from tests.factories import login_page

    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    resp = page.post(
        f"/sites/{site['id']}/suspend", data={"reason": "Monitoring", "on": iso(days_ago(3))}
    )
    assert resp.status_code == 302
    html = page.get(f"/sites/{site['id']}").get_data(as_text=True)
    table = html.split('id="status-history"')[1].split("</table>")[0]
    assert "suspension" in table and iso(days_ago(3)) in table and "Monitoring" in table
    assert "Reactivate" in html
    refused = page.post(f"/sites/{site['id']}/activate", data={"activated_on": iso(days_ago(4))})
    assert refused.status_code == 422


def test_migration_rebuilds_the_history_of_existing_sites(app, api):
    """Sites recorded before the history existed get it from their dates and the audit trail:
    downgrading drops the table, upgrading rebuilds the same history."""
    from flask_migrate import downgrade, upgrade

    lead = api.as_role("consortium_lead")
    active = active_site(lead, "S01", activated_on=days_ago(300))
    suspended = active_site(lead, "S02", activated_on=days_ago(200))
    lead.post(f"/sites/{suspended['id']}/suspend", json={"reason": "Audit findings"})
    cycled = active_site(lead, "S03", activated_on=days_ago(100))
    lead.post(f"/sites/{cycled['id']}/suspend", json={"reason": "Audit"})
    lead.post(f"/sites/{cycled['id']}/activate", json={"reason": "CAPA closed"})
    closed = active_site(lead, "S04", activated_on=days_ago(90))
    lead.post(f"/sites/{closed['id']}/close", json={"reason": "Ended", "on": iso(days_ago(9))})
    sites = (active, suspended, cycled, closed)

    def histories():
        return {
            s["code"]: [
                (c["change"], c["status"], c["on"], c["reason"], c["recorded_by"])
                for c in lead.get(f"/sites/{s['id']}/status-history").json
            ]
            for s in sites
        }

    before = histories()
    with app.app_context():
        db.session.remove()
        downgrade(revision="0005")  # the revision before the history table
        with db.engine.connect() as conn:
            assert "site_status_change" not in sa.inspect(conn).get_table_names()
        upgrade()
        db.session.remove()
    after = histories()
    assert after == before
    assert [c[0] for c in after["S03"]] == ["activation", "suspension", "reactivation"]
    assert after["S04"][-1][:3] == ("closure", "closed", iso(days_ago(9)))
    assert after["S02"][-1][:2] == ("suspension", "suspended")
    assert [s["status"] for s in (lead.get(f"/sites/{s['id']}").json for s in sites)] == [
        "active",
        "suspended",
        "active",
        "closed",
    ]


# --- 3. site-local dates ----------------------------------------------------------------


def _site_in(app, api, zone, code="S01"):
    lead = api.as_role("consortium_lead")
    partner = lead.post(
        "/partners",
        json={
            "name": f"Hospital {code}",
            "short_name": code,
            "kind": "clinical_site",
            "country": "JP",
        },
    ).json
    resp = lead.post(
        "/sites",
        json={
            "partner_id": partner["id"],
            "code": code,
            "name": f"Site {code}",
            "country": "JP",
            "timezone": zone,
        },
    )
    assert resp.status_code == 201, resp.json
    return lead, resp.json


def _grant_all(site, granted, now, expires=None):
    for kind in ("irb", "ibc", "contract", "siv"):
        approvals_service.add_approval(
            SYSTEM,
            site,
            {"kind": kind, "reference": kind, "granted_on": granted, "expires_on": expires},
            now,
        )


def test_a_tokyo_site_enters_its_today_at_half_past_midnight(app, api):
    _, body = _site_in(app, api, "Asia/Tokyo")
    # 15:30 UTC on 2026-03-09 is 00:30 on 2026-03-10 in Tokyo
    now = datetime(2026, 3, 9, 15, 30, tzinfo=UTC)
    local_today = date(2026, 3, 10)
    assert now.astimezone(ZoneInfo("Asia/Tokyo")).date() == local_today
    with app.app_context():
        site = db.session.get(Site, body["id"])
        _grant_all(site, local_today, now)
        status_service.activate_site(SYSTEM, site, now, local_today)
        status_service.suspend_site(SYSTEM, site, "Audit", now, local_today)
        status_service.activate_site(SYSTEM, site, now)  # default: the site's today
        assert site.status_changes[-1].on == local_today
        status_service.close_site(SYSTEM, site, "Ended", now, local_today)
        view = sites_service.site_view(site, now)
        assert view["today"] == local_today and view["closed_on"] == local_today
        db.session.commit()


def test_a_los_angeles_site_cannot_enter_tomorrow_at_8_pm(app, api):
    _, body = _site_in(app, api, "America/Los_Angeles")
    # 20:00 on 2026-03-10 in Los Angeles (PDT) is 03:00 UTC on 2026-03-11
    now = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
    local_today, tomorrow = date(2026, 3, 10), date(2026, 3, 11)
    assert now.astimezone(ZoneInfo("America/Los_Angeles")).date() == local_today
    with app.app_context():
        site = db.session.get(Site, body["id"])
        with pytest.raises(Invalid) as grant:
            _grant_all(site, tomorrow, now)
        assert "granted_on" in grant.value.errors
        _grant_all(site, local_today, now)
        with pytest.raises(Invalid) as activation:
            status_service.activate_site(SYSTEM, site, now, tomorrow)
        assert "activated_on" in activation.value.errors
        status_service.activate_site(SYSTEM, site, now)
        assert site.activated_on == local_today
        for operation in (status_service.suspend_site, status_service.close_site):
            with pytest.raises(Invalid) as refused:
                operation(SYSTEM, site, "Audit", now, tomorrow)
            assert "on" in refused.value.errors
        with pytest.raises(Invalid) as withdrawal:
            approvals_service.update_approval(
                SYSTEM, site.approvals[0], {"withdrawn_on": tomorrow, "reason": "EC"}, now
            )
        assert "withdrawn_on" in withdrawal.value.errors


def test_api_dates_are_the_sites_local_dates(app, api, monkeypatch):
    """Through the API at 20:00 in Los Angeles: tomorrow's grant is 422, today's is 201."""
    lead, site = _site_in(app, api, "America/Los_Angeles")
    monkeypatch.setattr(
        "trialmgr.partners.api.utcnow", lambda: datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
    )
    body = {"kind": "irb", "reference": "EC-1", "granted_on": "2026-03-11"}
    assert lead.post(f"/sites/{site['id']}/approvals", json=body).status_code == 422
    body["granted_on"] = "2026-03-10"
    assert lead.post(f"/sites/{site['id']}/approvals", json=body).status_code == 201
    assert lead.get(f"/sites/{site['id']}").json["today"] == "2026-03-10"


def test_approval_expiry_is_judged_on_the_sites_today(app, api):
    _, body = _site_in(app, api, "Asia/Tokyo")
    now = datetime(2026, 3, 9, 15, 30, tzinfo=UTC)  # 2026-03-10 00:30 in Tokyo
    with app.app_context():
        site = db.session.get(Site, body["id"])
        _grant_all(site, date(2026, 1, 1), now, expires=date(2026, 3, 9))
        view = approvals_service.approval_view(site.approvals[0], now)
        assert (view["state"], view["days_to_expiry"]) == ("expired", -1)
        assert approvals_service.missing_approvals(site, date(2026, 3, 10)) == [
            "irb",
            "ibc",
            "contract",
            "siv",
        ]
        with pytest.raises(Conflict):
            status_service.activate_site(SYSTEM, site, now, date(2026, 3, 9))


def test_site_creation_needs_a_known_time_zone(app, api):
    lead = api.as_role("consortium_lead")
    partner = lead.post(
        "/partners",
        json={"name": "Hospital", "short_name": "H", "kind": "clinical_site", "country": "IT"},
    ).json
    body = {"partner_id": partner["id"], "code": "S01", "name": "Site", "country": "IT"}
    missing = lead.post("/sites", json=body)
    assert missing.status_code == 422 and "timezone" in missing.json["errors"]
    for zone in ("Mars/Olympus", "localtime", "../../etc/passwd", "europe/rome", ""):
        bad = lead.post("/sites", json={**body, "timezone": zone})
        assert bad.status_code == 422 and "timezone" in bad.json["errors"], zone
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(Site)).scalar_one() == 0
    ok = lead.post("/sites", json={**body, "timezone": "Europe/Rome"})
    assert ok.status_code == 201 and ok.json["timezone"] == "Europe/Rome"


@pytest.mark.parametrize(
    "country, zone",
    [
        ("IT", "Europe/Rome"),
        ("FR", "Europe/Paris"),
        ("DE", "Europe/Berlin"),
        ("US", "America/New_York"),
        ("JP", "Asia/Tokyo"),
        ("it", "Europe/Rome"),
        ("XX", None),
        (None, None),
    ],
)
def test_country_suggests_a_zone(country, zone):
    assert suggested_zone(country) == zone


def test_every_suggested_zone_is_one_zoneinfo_knows():
    assert set(COUNTRY_ZONES.values()) <= available_timezones()


def test_site_form_offers_zones_with_a_suggestion_from_the_partners_country(app, api):
    from tests.factories import login_page

    lead = api.as_role("consortium_lead")
    partner = lead.post(
        "/partners",
        json={"name": "Hôpital", "short_name": "HL", "kind": "clinical_site", "country": "FR"},
    ).json
    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    html = page.get(f"/sites/new?partner_id={partner['id']}").get_data(as_text=True)
    zone_input = html.split('id="f-timezone"')[1].split(">")[0]
    assert 'value="Europe/Paris"' in zone_input and "list=zones" in zone_input
    assert '<datalist id="zones"' in html and '<option value="Asia/Tokyo">' in html
    refused = page.post(
        "/sites/new",
        data={"partner_id": str(partner["id"]), "code": "S01", "name": "Lyon", "country": "DE"},
    )
    assert refused.status_code == 422
    again = refused.get_data(as_text=True).split('id="f-timezone"')[1].split(">")[0]
    assert 'value="Europe/Berlin"' in again  # suggested from the typed country
    created = page.post(
        "/sites/new",
        data={
            "partner_id": str(partner["id"]),
            "code": "S01",
            "name": "Lyon",
            "country": "FR",
            "timezone": "America/Cayenne",
        },
    )
    assert created.status_code == 302
    shown = page.get(created.headers["Location"]).get_data(as_text=True)
    assert "America/Cayenne" in shown.split('id="site-timezone"')[1].split("</dd>")[0]


def test_dashboard_flags_only_the_approvals_in_force(app, api):
    from tests.factories import login_page

    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    with app.app_context():
        db.session.execute(
            sa.update(SiteApproval)
            .where(SiteApproval.kind == "irb")
            .values(expires_on=days_ago(-5))
        )
        db.session.commit()
    page = app.test_client()
    assert login_page(page, lead.user["email"]).status_code == 302
    assert "irb expiring in 5 d" in page.get("/").get_data(as_text=True)
    _renew_irb(lead, site, days_ago(1), days_ago(-365))
    assert "irb expiring" not in page.get("/").get_data(as_text=True)


def test_the_status_history_model_allows_only_known_changes(app, api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    with app.app_context(), pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.insert(SiteStatusChange).values(
                site_id=site["id"],
                change="reactivation",
                status="suspended",
                on=TODAY,
                recorded_at=datetime.now(UTC),
                recorded_by="x",
            )
        )
