"""Feasibility metrics (issue 13): exact intervals from scipy against published values, the
constructed pilot of tests/feasibility_world.py counted by hand, site-months that skip a
suspension, the per-site breakdown, reviews as of a past date, and coordinators reading
only their own sites' numbers."""

from datetime import timedelta

import pytest

from tests.builders import active_site, at, days_ago, enrol, open_trial, world
from tests.feasibility_world import ELIGIBLE, pilot, record, screen, visits
from trialmgr.milestones.services.stats import inverse_proportion, proportion, rate

DAYS_PER_MONTH = 365.25 / 12


def approx(value, rel=1e-4):
    return pytest.approx(value, rel=rel, abs=1e-4)


# --- the intervals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (8, 10, 0.4439, 0.9748),  # the example
        (2, 4, 0.0676, 0.9324),
        (0, 10, 0.0, 0.3085),
        (10, 10, 0.6915, 1.0),
        (6, 8, 0.3491, 0.9681),
    ],
)
def test_clopper_pearson_matches_published_values(k, n, low, high):
    estimate = proportion(k, n)
    assert estimate.value == k / n
    assert (round(estimate.ci_low, 4), round(estimate.ci_high, 4)) == (low, high)


@pytest.mark.parametrize(
    ("k", "exposure", "low", "high"),
    [
        (5, 1.0, 1.6235, 11.6683),  # exact Poisson limits for 5 events (Garwood, 1936)
        (0, 1.0, 0.0, 3.6889),
        (4, 1.0, 1.0899, 10.2416),
        (4, 2.0, 0.5449, 5.1208),  # the same counts over twice the exposure: halved
    ],
)
def test_exact_poisson_interval_matches_published_values(k, exposure, low, high):
    estimate = rate(k, exposure)
    assert (round(estimate.ci_low, 4), round(estimate.ci_high, 4)) == (low, high)


def test_a_ratio_of_nested_counts_takes_the_inverted_proportion_interval():
    ratio = inverse_proportion(8, 4)  # 8 screened per 4 enrolled
    assert ratio.value == 2.0
    inner = proportion(4, 8)
    assert ratio.ci_low == approx(1 / inner.ci_high) and ratio.ci_high == approx(1 / inner.ci_low)
    assert inverse_proportion(3, 0).unbounded and inverse_proportion(3, 0).value is None


def test_no_denominator_no_value():
    assert proportion(0, 0).value is None and proportion(0, 0).ci_low is None
    assert rate(0, 0).value is None


# --- the constructed pilot -----------------------------------------------------------------


@pytest.fixture()
def p(api):
    return pilot(api)


def metrics_of(resp):
    assert resp.status_code == 200, resp.json
    return {m["metric"]: m for m in resp.json["metrics"]}


def test_every_metric_of_the_constructed_pilot_by_hand(p):
    got = metrics_of(p["lead"].get(f"/trials/{p['trial']['id']}/feasibility"))
    assert list(got) == [
        "recruitment_rate",
        "screen_to_enrol_ratio",
        "eligibility_rate",
        "consent_rate",
        "retention",
        "visit_adherence",
        "data_completeness",
        "sae_timeliness",
    ]
    # 4 enrolled over S01's 401 days open (activated 400 days ago, today included; the
    # consent form was approved before the activation) = 13.1745 site-months.
    months = 401 / DAYS_PER_MONTH
    rr = got["recruitment_rate"]
    assert rr["numerator"] == 4 and rr["denominator"] == approx(months, 1e-6)
    assert rr["value"] == approx(4 / months)
    # exact Poisson limits for 4 events are 1.0899 and 10.2416, per site-month of exposure
    assert rr["ci_low"] == approx(1.0899 / months) and rr["ci_high"] == approx(10.2416 / months)
    # 9 approached, 1 still in screening: 8 screened for 4 enrolled
    ratio = got["screen_to_enrol_ratio"]
    assert (ratio["numerator"], ratio["denominator"], ratio["value"]) == (8, 4, 2.0)
    assert ratio["ci_low"] == approx(1 / 0.8430, 1e-3) and ratio["ci_high"] == approx(
        1 / 0.1570, 1e-3
    )
    # eligible: 4 enrolled + the one who declined + the one not enrolled = 6 of 8 screened
    eligibility = got["eligibility_rate"]
    assert (eligibility["numerator"], eligibility["denominator"], eligibility["value"]) == (
        6,
        8,
        0.75,
    )
    assert (round(eligibility["ci_low"], 4), round(eligibility["ci_high"], 4)) == (0.3491, 0.9681)
    # asked to consent: the 6 eligible and the one who consented, then failed screening;
    # consented: the 4 enrolled and that one
    assert (got["consent_rate"]["numerator"], got["consent_rate"]["denominator"]) == (5, 7)
    # primary endpoint (Week 12): A and B done; C lost before it (window passed) = 2 of 3
    assert (got["retention"]["numerator"], got["retention"]["denominator"]) == (2, 3)
    # due visits: A 3, B 3 (Week 4 missed), C 1 (the rest cancelled by the loss);
    # in window: A Day 7 and Week 4 (Week 12 two days late), B Day 7 and Week 12, C Day 7
    assert (got["visit_adherence"]["numerator"], got["visit_adherence"]["denominator"]) == (5, 7)
    # 7 due protocol visits x 2 required fields (done_on, notes) = 14; filled: A 2+1+1,
    # B 2+0+1, C 1 = 8
    assert (got["data_completeness"]["numerator"], got["data_completeness"]["denominator"]) == (
        8,
        14,
    )
    # 4 reports due (sponsor, FDA, EU, IBC); sponsor and FDA on time
    sae = got["sae_timeliness"]
    assert (sae["numerator"], sae["denominator"], sae["value"]) == (2, 4, 0.5)
    assert (round(sae["ci_low"], 4), round(sae["ci_high"], 4)) == (0.0676, 0.9324)


def test_recruitment_months_skip_a_suspension(api):
    w = world(api)
    lead, site = w["lead"], w["site"]
    enrol(w["coord"], w["trial"], w["site"])
    resp = lead.post(
        f"/sites/{site['id']}/suspend",
        json={"reason": "audit findings", "on": days_ago(200).isoformat()},
    )
    assert resp.status_code == 200, resp.json
    resp = lead.post(
        f"/sites/{site['id']}/activate", json={"activated_on": days_ago(100).isoformat()}
    )
    assert resp.status_code == 200, resp.json
    rr = metrics_of(lead.get(f"/trials/{w['trial']['id']}/feasibility"))["recruitment_rate"]
    # open 400 -> 200 days ago (200 days) and from 100 days ago to today included (101)
    assert rr["denominator"] == approx(301 / DAYS_PER_MONTH, 1e-6)
    assert rr["value"] == approx(DAYS_PER_MONTH / 301)


def test_recruitment_months_start_when_the_consent_is_approved_at_the_site(api):
    lead = api.as_role("consortium_lead")
    site = active_site(lead, "S01")
    trial = open_trial(lead, consent_approved=days_ago(60))
    rr = metrics_of(lead.get(f"/trials/{trial['id']}/feasibility"))["recruitment_rate"]
    assert rr["numerator"] == 0 and rr["denominator"] == approx(61 / DAYS_PER_MONTH, 1e-6)
    assert rr["value"] == 0 and rr["ci_low"] == 0
    assert site["code"] == "S01"


def test_per_site_breakdown_with_the_sites_targets(api, p):
    lead, trial = p["lead"], p["trial"]
    s02 = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    enrol(coord2, trial, s02, cohort=3)
    review = lead.get(f"/trials/{trial['id']}/feasibility").json
    sites = {s["site_code"]: s for s in review["sites"]}
    assert set(sites) == {"S01", "S02"}
    assert (sites["S01"]["enrolled"], sites["S01"]["target_enrollment"]) == (4, 4)
    assert sites["S01"]["percent_of_target"] == 100.0
    assert (sites["S02"]["enrolled"], sites["S02"]["percent_of_target"]) == (1, 25.0)
    s02_rate = {m["metric"]: m for m in sites["S02"]["metrics"]}["recruitment_rate"]
    assert s02_rate["numerator"] == 1
    overall = {m["metric"]: m for m in review["metrics"]}["recruitment_rate"]
    assert overall["numerator"] == 5
    assert overall["denominator"] == approx(2 * 401 / DAYS_PER_MONTH, 1e-6)


def test_as_of_reproduces_an_earlier_review_after_later_data_is_added(api, p):
    lead, coord, trial, site = p["lead"], p["coord"], p["trial"], p["site"]
    url = f"/trials/{trial['id']}/feasibility?as_of={days_ago(30).isoformat()}"
    before = lead.get(url).json
    consort_url = f"/trials/{trial['id']}/consort?as_of={days_ago(30).isoformat()}"
    consort_before = lead.get(consort_url).json
    # later records: a screening and an enrolment dated after the review date, and the
    # open IBC report submitted yesterday
    fresh = screen(coord, trial, site, 5, answers=ELIGIBLE, outcome="eligible")
    late = coord.post(
        "/subjects",
        json={
            "screening_id": fresh["id"],
            "cohort_id": trial["cohorts"][1]["id"],
            "consent_version_id": trial["consent_versions"][0]["id"],
            "consented_on": days_ago(3).isoformat(),
            "enrolled_on": days_ago(3).isoformat(),
        },
    )
    assert late.status_code == 201, late.json
    ibc = next(r for r in p["monitor"].get("/expedited-reports").json if r["authority"] == "IBC")
    assert (
        p["monitor"]
        .patch(
            f"/expedited-reports/{ibc['id']}",
            json={"submitted_at": at(days_ago(1)), "reference": "IBC-1"},
        )
        .status_code
        == 200
    )
    after = lead.get(url).json
    assert after == before
    assert lead.get(consort_url).json == consort_before
    today = metrics_of(lead.get(f"/trials/{trial['id']}/feasibility"))
    assert today["recruitment_rate"]["numerator"] == 5
    assert today["sae_timeliness"]["denominator"] == 4


def test_an_earlier_as_of_counts_only_what_had_happened(p):
    lead, trial = p["lead"], p["trial"]
    # 250 days ago: the 4 enrolled and 3 other screenings (failed x2, declined) were
    # logged; A and B dosed (280, 260 days ago), only A's Day 7 and Week 4 windows closed
    early = metrics_of(
        lead.get(f"/trials/{trial['id']}/feasibility?as_of={days_ago(250).isoformat()}")
    )
    assert (early["eligibility_rate"]["numerator"], early["eligibility_rate"]["denominator"]) == (
        5,
        7,
    )
    assert early["recruitment_rate"]["numerator"] == 4
    assert early["recruitment_rate"]["denominator"] == approx(151 / DAYS_PER_MONTH, 1e-6)
    # A: Day 7 (window closed 271 days ago) and Week 4 (done 252 days ago) are due; B: Day 7
    assert (early["visit_adherence"]["numerator"], early["visit_adherence"]["denominator"]) == (
        3,
        3,
    )
    assert early["retention"]["denominator"] == 0 and early["retention"]["value"] is None
    assert early["sae_timeliness"]["denominator"] == 0


def test_the_trend_has_a_point_per_month_ending_on_the_review_date(p):
    review = p["lead"].get(f"/trials/{p['trial']['id']}/feasibility").json
    trend = review["trend"]
    assert trend[-1]["as_of"] == review["as_of"]
    assert trend[-1]["values"] == {m["metric"]: m["value"] for m in review["metrics"]}
    assert all(point["as_of"][-2:] >= "28" for point in trend[:-1])  # month ends


def test_coordinators_see_only_their_own_sites_numbers(api, p):
    lead, trial = p["lead"], p["trial"]
    s02 = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    enrol(coord2, trial, s02, cohort=3)
    mine = coord2.get(f"/trials/{trial['id']}/feasibility").json
    assert [s["site_code"] for s in mine["sites"]] == ["S02"]
    assert (
        metrics_of(coord2.get(f"/trials/{trial['id']}/feasibility"))["recruitment_rate"][
            "numerator"
        ]
        == 1
    )
    assert coord2.get(f"/trials/{trial['id']}/consort").json["enrolled"] == 1
    for path in ("feasibility", "consort"):
        other = coord2.get(f"/trials/{trial['id']}/{path}?site_id={p['site']['id']}")
        assert other.status_code == 404, path
        assert lead.get(f"/trials/{trial['id']}/{path}?site_id={s02['id']}").status_code == 200
    assert (
        p["coord"].get(f"/trials/{trial['id']}/feasibility?site_id={s02['id']}").status_code == 404
    )


def test_a_future_or_malformed_review_date_is_422(p):
    lead, tid = p["lead"], p["trial"]["id"]
    for query in (f"as_of={days_ago(-1).isoformat()}", "as_of=yesterday", "site_id=x"):
        for path in ("feasibility", "consort", "milestones"):
            resp = lead.get(f"/trials/{tid}/{path}?{query}")
            if path == "milestones" and query.startswith("site_id"):
                continue
            assert resp.status_code == 422, (path, query, resp.json)
    assert lead.get(f"/trials/{tid}/feasibility?site_id=999").status_code == 404
    assert lead.get("/trials/999/feasibility").status_code == 404


def test_a_trial_without_records_has_metrics_without_values(api):
    lead = api.as_role("consortium_lead")
    trial = open_trial(lead, open_=False)
    review = lead.get(f"/trials/{trial['id']}/feasibility").json
    assert all(m["value"] is None or m["metric"] == "recruitment_rate" for m in review["metrics"])
    assert review["decision"] is None and review["sites"] == [] and review["trend"] == []


def test_visits_entered_late_count_on_their_own_dates(p):
    """A visit recorded today but done 2 days ago is in window as of yesterday."""
    coord, lead, trial = p["coord"], p["lead"], p["trial"]
    b = visits(coord, p["subjects"]["B"])
    record(coord, b["Week 12"], status="done", done_on=(days_ago(260) + timedelta(81)).isoformat())
    got = metrics_of(lead.get(f"/trials/{trial['id']}/feasibility?as_of={days_ago(1).isoformat()}"))
    assert got["visit_adherence"]["numerator"] == 5
