"""The feasibility report says what the feasibility page says: each progression criterion's
light and value, the decision, the metrics with their fractions, milestones planned against
actual; records entered after the cut-off are left out."""

import re

from tests.builders import TODAY, days_ago
from tests.reports_helpers import constructed_trial, generate, pdf_text, pdf_words

MILESTONE = 'Protocol <b>v2</b> & "final" — ethics Ελλάδα'


def _feasibility_pdf(lead, trial, cut_off):
    made = generate(lead, kind="feasibility", trial_id=trial["id"], cut_off=cut_off.isoformat())
    assert made["status"] == "done", made
    data = lead.get(f"/reports/{made['id']}/pdf").data
    return pdf_text(data), pdf_words(data)


def _between(text, start, end):
    first = text.rindex(start)
    return text[first : text.index(end, first)]


def test_criteria_lights_values_and_decision_match_the_feasibility_page(app, api):
    scene = constructed_trial(api)
    lead, trial = scene["lead"], scene["trial"]
    for metric, target, amber in (
        ("eligibility_rate", "0.01", "0.5"),  # green
        ("consent_rate", "1", "0.1"),  # amber: 3 of 4 consented
        ("screen_to_enrol_ratio", "1", "0.5"),  # red: more than 2 screened per enrolled
    ):
        body = {"metric": metric, "target": target, "amber_fraction": amber}
        made = lead.post(f"/trials/{trial['id']}/progression-criteria", json=body)
        assert made.status_code == 201, made.json
    page = lead.get(f"/trials/{trial['id']}/feasibility?as_of={TODAY.isoformat()}").json
    text, words = _feasibility_pdf(lead, trial, TODAY)
    table = _between(text, "2. Progression criteria", "3. Feasibility metrics")
    lights = {}
    for criterion in page["criteria"]:
        row = re.search(rf"{criterion['label']}\s+.*?●\s+(GREEN|AMBER|RED)", table)
        assert row, criterion["label"]
        lights[criterion["metric"]] = row.group(1).lower()
    assert lights == {c["metric"]: c["light"] for c in page["criteria"]}
    assert set(lights.values()) == {"green", "amber", "red"}
    assert page["decision"] == "stop" and "STOP OR RETHINK" in table
    eligibility = next(m for m in page["metrics"] if m["metric"] == "eligibility_rate")
    share = f"{100 * eligibility['value']:.1f} %"
    interval = f"{100 * eligibility['ci_low']:.1f} to {100 * eligibility['ci_high']:.1f} %"
    assert re.search(rf"Eligibility rate\s+≥ 1\.0 %.*?{share}\s+{interval}", table)
    metrics = _between(text, "3. Feasibility metrics", "Proportion metrics at the end")
    fraction = f"{eligibility['numerator']} / {eligibility['denominator']}"
    assert re.search(rf"Eligibility rate\s+{fraction}\s+{share}\s+{interval}", metrics)
    assert "Not yet in this report" not in words


def test_milestones_planned_against_actual_with_user_text_as_typed(app, api):
    scene = constructed_trial(api)
    lead, trial = scene["lead"], scene["trial"]
    body = {
        "name": MILESTONE,
        "planned_on": days_ago(40).isoformat(),
        "achieved_on": days_ago(33).isoformat(),
    }
    assert lead.post(f"/trials/{trial['id']}/milestones", json=body).status_code == 201
    late = {"name": "Interim review", "planned_on": days_ago(20).isoformat()}
    assert lead.post(f"/trials/{trial['id']}/milestones", json=late).status_code == 201
    _, words = _feasibility_pdf(lead, trial, days_ago(10))
    section = _between(words, "4. Milestones, planned against actual", "5. CONSORT flow")
    assert MILESTONE in section
    assert f"trial {days_ago(40)} {days_ago(33)} 7 done" in section
    assert f"Interim review trial {days_ago(20)} — 10 late" in section
    assert "2 milestone(s): 1 achieved by the cut-off, 1 late" in section


def test_records_entered_after_the_cut_off_are_left_out(app, api):
    """Everything in the constructed trial was entered today: a report cut off yesterday
    counts none of it, one cut off today counts it all (as the page does)."""
    scene = constructed_trial(api)
    lead, trial = scene["lead"], scene["trial"]
    text, _ = _feasibility_pdf(lead, trial, days_ago(1))
    flow = _between(text, "5. CONSORT flow", "6. Audit trail")
    assert re.search(r"Approached \(screening log\): 0\b", flow)
    assert re.search(r"Enrolled: 0\b", flow)
    text, _ = _feasibility_pdf(lead, trial, TODAY)
    flow = _between(text, "5. CONSORT flow", "6. Audit trail")
    consort = lead.get(f"/trials/{trial['id']}/consort").json
    assert re.search(rf"Approached \(screening log\): {consort['approached']}\b", flow)
    assert re.search(rf"Enrolled: {consort['enrolled']}\b", flow)
    assert consort["enrolled"] == 3
