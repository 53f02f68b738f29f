"""Progression criteria (issue 13): the traffic lights at their exact boundaries in both
directions, the overall decision rule, and the criteria through the API on the constructed
pilot of tests/feasibility_world.py."""

from decimal import Decimal
from fractions import Fraction

import pytest

from tests.feasibility_world import pilot
from trialmgr.milestones.services.criteria import decision, light
from trialmgr.milestones.services.stats import inverse_proportion, proportion, rate

D = Decimal


@pytest.mark.parametrize(
    ("k", "n", "target", "fraction", "expected"),
    [
        (8, 10, "0.8", "0.5", "green"),  # exactly at the target
        (9, 10, "0.8", "0.5", "green"),
        (79, 100, "0.8", "0.5", "amber"),
        (4, 10, "0.8", "0.5", "amber"),  # exactly at the amber threshold (0.8 x 0.5)
        (39, 100, "0.8", "0.5", "red"),
        (3, 10, "0.3", "0.7", "green"),  # 0.1 * 3 != 0.3 in floats; exact here
        (21, 100, "0.3", "0.7", "amber"),  # 0.3 x 0.7 = 0.21 exactly
        (20, 100, "0.3", "0.7", "red"),
        (1, 1, "1", "1", "green"),  # amber fraction 1: no amber band
        (99, 100, "1", "1", "red"),
        (0, 5, "0.5", "0.5", "red"),
    ],
)
def test_lights_of_a_proportion_at_their_boundaries(k, n, target, fraction, expected):
    assert light("retention", proportion(k, n), D(target), D(fraction)) == expected


def test_lights_of_a_rate_at_their_boundaries():
    assert light("recruitment_rate", rate(1, 2.0), D("0.5"), D("0.5")) == "green"
    assert light("recruitment_rate", rate(1, 4.0), D("0.5"), D("0.5")) == "amber"
    assert light("recruitment_rate", rate(1, 5.0), D("0.5"), D("0.5")) == "red"


@pytest.mark.parametrize(
    ("screened", "enrolled", "target", "fraction", "expected"),
    [
        (6, 2, "3", "0.5", "green"),  # exactly 3 per enrolment: at the target
        (5, 2, "3", "0.5", "green"),
        (7, 2, "3", "0.5", "amber"),
        (12, 2, "3", "0.5", "amber"),  # exactly 6 = 3 / 0.5: the amber threshold
        (13, 2, "3", "0.5", "red"),
        (10, 4, "2.5", "0.8", "green"),
        (25, 8, "2.5", "0.8", "amber"),  # 3.125 = 2.5 / 0.8 exactly
        (26, 8, "2.5", "0.8", "red"),
        (4, 0, "3", "0.5", "red"),  # screenings and no enrolment at all
    ],
)
def test_screened_per_enrolled_is_better_lower(screened, enrolled, target, fraction, expected):
    estimate = inverse_proportion(screened, enrolled)
    assert light("screen_to_enrol_ratio", estimate, D(target), D(fraction)) == expected


def test_no_data_no_light():
    assert light("retention", proportion(0, 0), D("0.8"), D("0.5")) is None
    assert light("screen_to_enrol_ratio", inverse_proportion(0, 0), D("3"), D("0.5")) is None
    assert proportion(1, 3).exact == Fraction(1, 3)


@pytest.mark.parametrize(
    ("lights", "expected"),
    [
        (["green"], "proceed"),
        (["green", "green", "green"], "proceed"),
        (["green", "amber"], "amend"),
        (["amber", "amber"], "amend"),
        (["green", None], "amend"),  # no evidence yet: not enough to proceed
        (["green", "amber", "red"], "stop"),
        (["red"], "stop"),
        ([None, "red"], "stop"),
        ([], None),
    ],
)
def test_the_decision_rule(lights, expected):
    assert decision(lights) == expected


# --- through the API ---------------------------------------------------------------------


@pytest.fixture()
def p(api):
    return pilot(api)


def _criteria(resp):
    assert resp.status_code == 200, resp.json
    return {c["metric"]: c for c in resp.json["criteria"]}


def test_criteria_lights_and_decision_on_the_pilot(p):
    lead, tid = p["lead"], p["trial"]["id"]
    for metric, target, fraction in (
        ("eligibility_rate", 0.75, None),  # 6/8 = 0.75 exactly: green
        ("screen_to_enrol_ratio", 2, None),  # 8/4 = 2 exactly: green (lower is better)
        ("sae_timeliness", 1, 0.5),  # 2/4 = 0.5 = 1 x 0.5 exactly: amber
        ("data_completeness", 1, 0.6),  # 8/14 = 0.571 < 0.6: red
    ):
        body = {"metric": metric, "target": target}
        if fraction is not None:
            body["amber_fraction"] = fraction
        resp = lead.post(f"/trials/{tid}/progression-criteria", json=body)
        assert resp.status_code == 201, resp.json
        assert resp.json["amber_fraction"] == (fraction or 0.5)
    review = lead.get(f"/trials/{tid}/feasibility")
    lights = {m: c["light"] for m, c in _criteria(review).items()}
    assert lights == {
        "screen_to_enrol_ratio": "green",
        "eligibility_rate": "green",
        "data_completeness": "red",
        "sae_timeliness": "amber",
    }
    assert review.json["decision"] == "stop"
    criteria = _criteria(review)
    assert criteria["screen_to_enrol_ratio"]["amber_threshold"] == 4.0
    assert criteria["screen_to_enrol_ratio"]["direction"] == "lower_is_better"
    assert criteria["sae_timeliness"]["ci_low"] == pytest.approx(0.0676, abs=1e-4)
    # per site, against the same criteria
    site_lights = review.json["sites"][0]["lights"]
    assert site_lights["data_completeness"] == "red"
    # relax the red one to its amber band: amend; then lower the rest to green: proceed
    red = criteria["data_completeness"]["id"]
    resp = lead.patch(
        f"/progression-criteria/{red}",
        json={"amber_fraction": 0.5, "reason": "agreed at the review"},
    )
    assert resp.status_code == 200, resp.json
    assert lead.get(f"/trials/{tid}/feasibility").json["decision"] == "amend"
    for metric, target in (("data_completeness", 0.5), ("sae_timeliness", 0.5)):
        resp = lead.patch(
            f"/progression-criteria/{criteria[metric]['id']}",
            json={"target": target, "reason": "revised by the steering committee"},
        )
        assert resp.status_code == 200, resp.json
    assert lead.get(f"/trials/{tid}/feasibility").json["decision"] == "proceed"
    listed = lead.get(f"/trials/{tid}/progression-criteria").json
    assert [c["metric"] for c in listed] == [
        "screen_to_enrol_ratio",
        "eligibility_rate",
        "data_completeness",
        "sae_timeliness",
    ]
    audit = lead.get("/audit?entity=progression_criterion").json
    assert any(row["reason"] == "agreed at the review" for row in audit)


def test_a_criterion_is_refused_when_it_cannot_be_met_or_exists(p):
    lead, tid = p["lead"], p["trial"]["id"]
    for body in (
        {"metric": "retention", "target": 1.5},  # a proportion above 1
        {"metric": "screen_to_enrol_ratio", "target": 0.5},  # fewer screened than enrolled
        {"metric": "retention", "target": 0},
        {"metric": "retention", "target": 0.8, "amber_fraction": 1.2},
        {"metric": "retention", "target": 0.8, "amber_fraction": 0},
        {"metric": "happiness", "target": 0.8},
        {"metric": "retention"},
        {"metric": "retention", "target": "NaN"},
    ):
        resp = lead.post(f"/trials/{tid}/progression-criteria", json=body)
        assert resp.status_code == 422, (body, resp.json)
    assert (
        lead.post(
            f"/trials/{tid}/progression-criteria", json={"metric": "retention", "target": 0.8}
        ).status_code
        == 201
    )
    again = lead.post(
        f"/trials/{tid}/progression-criteria", json={"metric": "retention", "target": 0.9}
    )
    assert again.status_code == 409
    criterion = lead.get(f"/trials/{tid}/progression-criteria").json[0]
    no_reason = lead.patch(f"/progression-criteria/{criterion['id']}", json={"target": 0.9})
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]
    coord = p["coord"]
    assert (
        coord.post(
            f"/trials/{tid}/progression-criteria", json={"metric": "consent_rate", "target": 0.8}
        ).status_code
        == 403
    )
    assert coord.get(f"/trials/{tid}/progression-criteria").status_code == 200
