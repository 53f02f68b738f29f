"""The DSMB report's adverse-event, laboratory and CONSORT sections say what the database
says at the report's data cut-off: numbers read back from the PDF for a constructed trial
whose records were entered at two moments (20 days ago, and now), one event edited since."""

import re
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from tests.builders import TODAY, at, days_ago, dose, enrol, world
from tests.reports_helpers import generate, pdf_text, pdf_words
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Dosing, Screening, Subject
from trialmgr.extensions import db
from trialmgr.safety.models import AdverseEvent, AdverseEventVersion, ExpeditedReport, LabResult

CUT_OFF = days_ago(10)
# User text with markup characters, quotes and non-Latin letters: printed as typed.
ODD_SOC = 'Hépatique <b>SOC</b> & "ηπατικές"'
ODD_TERM = "Hépatite <i>aiguë</i> & 'cholestatique'"


def _ae(coord, subject, term, soc, onset, grade, **extra):
    body = {
        "subject_code": subject["code"],
        "term": term,
        "soc": soc,
        "onset_date": onset.isoformat(),
        "grade": grade,
        "causality": "unlikely",
        "expected": True,
        **extra,
    }
    resp = coord.post("/adverse-events", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def _alt(coord, subject, value, collected):
    body = {
        "subject_code": subject["code"],
        "analyte": "ALT",
        "value": value,
        "unit": "U/L",
        "uln": 40,
        "lln": 7,
        "collected_at": at(collected),
    }
    resp = coord.post("/labs", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


def _entered_20_days_ago(app):
    """Every record so far was entered 20 days ago (data entry is dated by created_at)."""
    then = utcnow() - timedelta(days=20)
    with app.app_context():
        for model in (Screening, Subject, Dosing, AdverseEvent, LabResult, ExpeditedReport):
            db.session.execute(sa.update(model).values(created_at=then, updated_at=then))
        db.session.execute(sa.update(AdverseEventVersion).values(recorded_at=then))
        db.session.commit()


def _scene(app, api):
    """C1: A (dosed 100 days ago) and B (dosed 80 days ago); C2: C (not dosed). Entered 20
    days ago: A headache G1, A hepatitis G3 serious AESI (odd SOC), A rash G1 with onset after
    the cut-off, B headache G2, B pyrexia G1 (raised now to G3 serious), C nausea G2; ALT of A
    normal before dosing and grade 3 after. Entered now: B fatigue G2 and C's death (both
    with onset before the cut-off), a grade 4 ALT of A, subject D."""
    w = world(api)
    coord = w["coord"]
    trial, site = w["trial"], w["site"]
    a, b = enrol(coord, trial, site), enrol(coord, trial, site)
    c = enrol(coord, trial, site, cohort=2)
    assert dose(coord, a, days_ago(100)).status_code == 201
    assert dose(coord, b, days_ago(80)).status_code == 201
    _alt(coord, a, 30, days_ago(101))
    _alt(coord, a, 250, days_ago(60))
    _ae(coord, a, "Headache", "Nervous system disorders", days_ago(60), 1)
    hepatitis = _ae(
        coord,
        a,
        ODD_TERM,
        ODD_SOC,
        days_ago(50),
        3,
        seriousness_criteria=["hospitalisation"],
        aesi=True,
        aesi_category="hepatotoxicity",
    )
    _ae(coord, a, "Rash", "Skin and subcutaneous tissue disorders", days_ago(5), 1)
    _ae(coord, b, "Headache", "Nervous system disorders", days_ago(40), 2)
    pyrexia = _ae(coord, b, "Pyrexia", "General disorders", days_ago(30), 1)
    _ae(coord, c, "Nausea", "Gastrointestinal disorders", days_ago(20), 2)
    _entered_20_days_ago(app)
    raised = coord.patch(
        f"/adverse-events/{pyrexia['id']}",
        json={"grade": 3, "seriousness_criteria": ["hospitalisation"], "reason": "admitted"},
    )
    assert raised.status_code == 200, raised.json
    _ae(coord, b, "Fatigue", "General disorders", days_ago(25), 2)
    death = _ae(
        coord,
        c,
        "Sudden death",
        "General disorders",
        days_ago(12),
        5,
        resolution_date=days_ago(12).isoformat(),
        causality="unrelated",
    )
    _alt(coord, a, 900, days_ago(30))
    enrol(coord, trial, site)
    return {**w, "a": a, "b": b, "c": c, "hepatitis": hepatitis, "pyrexia": pyrexia, "death": death}


def _report(scene, cut_off):
    monitor = scene["lead"]
    made = generate(
        monitor, kind="dsmb_safety", trial_id=scene["trial"]["id"], cut_off=cut_off.isoformat()
    )
    assert made["status"] == "done", made
    data = monitor.get(f"/reports/{made['id']}/pdf").data
    return pdf_text(data), pdf_words(data)


def _between(text, start, end):
    """From the last `start` (section titles are in the contents too) to the next `end`."""
    first = text.rindex(start)
    return text[first : text.index(end, first)]


def _grades(text):
    """{cohort: [G1..G5, all]} from the events-by-grade table."""
    table = _between(text, "Events by CTCAE grade, per cohort", "Adverse events by CTCAE grade")
    return {
        m.group(1): [int(n) for n in m.group(2).split()]
        for m in re.finditer(r"^\s*(C\d)((?:\s+\d+){6})\s*$", table, re.M)
    }


def test_ae_counts_per_grade_and_cohort_at_the_cut_off(app, api):
    scene = _scene(app, api)
    text, _ = _report(scene, CUT_OFF)
    # entered by the cut-off with onset by then, pyrexia at its grade then (1)
    assert _grades(text) == {
        "C1": [2, 1, 1, 0, 0, 4],
        "C2": [0, 1, 0, 0, 0, 1],
        "C3": [0, 0, 0, 0, 0, 0],
    }


def test_ae_counts_today_match_the_adverse_event_list(app, api):
    scene = _scene(app, api)
    text, _ = _report(scene, TODAY)
    events = scene["lead"].get(f"/adverse-events?trial_id={scene['trial']['id']}&page_size=100")
    labels = {c["id"]: c["label"] for c in scene["trial"]["cohorts"]}
    counted = Counter((labels[e["cohort_id"]], e["grade"]) for e in events.json)
    expected = {
        label: [
            *(counted[(label, g)] for g in range(1, 6)),
            sum(counted[(label, g)] for g in range(1, 6)),
        ]
        for label in ("C1", "C2", "C3")
    }
    assert _grades(text) == expected
    assert expected["C1"] == [2, 2, 2, 0, 0, 6] and expected["C2"] == [0, 1, 0, 0, 1, 2]


def test_soc_table_counts_subjects_at_their_worst_grade_and_prints_user_text(app, api):
    scene = _scene(app, api)
    text, _ = _report(scene, CUT_OFF)
    soc = _between(text, "By system organ class and worst grade", "By preferred term")
    # headache: A at grade 1, B at grade 2, one subject (one event) in each row
    assert re.search(r"Nervous system disorders\s+1\s+1 \(1\)\s+0\s+0\s+1 \(1\)", soc)
    assert re.search(r"Nervous system disorders\s+2\s+1 \(1\)\s+0\s+0\s+1 \(1\)", soc)
    assert re.search(re.escape(ODD_SOC) + r"\s+3\s+1 \(1\)\s+0\s+0\s+1 \(1\)", soc)
    assert re.search(r"Gastrointestinal disorders\s+2\s+0\s+1 \(1\)\s+0\s+1 \(1\)", soc)
    assert "Skin" not in soc and "Fatigue" not in text  # onset, or entry, after the cut-off


def test_sae_and_death_listings_hold_the_serious_events_as_they_stood(app, api):
    scene = _scene(app, api)
    a, b, c = scene["a"]["code"], scene["b"]["code"], scene["c"]["code"]
    _, words = _report(scene, CUT_OFF)
    saes = _between(words, "5. Serious adverse events and deaths", "6. Adverse events of special")
    listed = re.findall(r"\b(\d+) ([A-Z0-9]+-[A-Z0-9]+) (C\d)\b", saes)
    assert listed == [(str(scene["hepatitis"]["id"]), a, "C1")]  # pyrexia was not serious then
    assert "No death by the cut-off." in saes
    _, words = _report(scene, TODAY)
    saes = _between(words, "5. Serious adverse events and deaths", "Deaths")
    serious = scene["lead"].get(f"/adverse-events?trial_id={scene['trial']['id']}&serious=true")
    rows = re.findall(r"\b(\d+) ([A-Z0-9]+-[A-Z0-9]+) (C\d)\b", saes)
    assert sorted(int(i) for i, *_ in rows) == sorted(e["id"] for e in serious.json)
    assert {code for _, code, _ in rows} == {a, b, c}
    deaths = _between(words, "Deaths", "6. Adverse events of special")
    assert re.findall(r"\b(\d+) ([A-Z0-9]+-[A-Z0-9]+) (C\d)\b", deaths) == [
        (str(scene["death"]["id"]), c, "C2")
    ]


def test_lab_shifts_and_grade_3_draws_at_the_cut_off(app, api):
    scene = _scene(app, api)
    a = scene["a"]["code"]
    text, _ = _report(scene, CUT_OFF)
    labs = _between(text, "7. Laboratory abnormalities", "8. Stopping rules")
    assert re.search(r"ALT\s+C1\s+0\s+3\s+1", labs)  # A: normal at baseline, grade 3 after
    assert re.search(rf"{a}\s+S01\s+C1\s+ALT\s+{days_ago(60)}\s+250 U/L\s+6\.25\s+3\s+no", labs)
    assert "900 U/L" not in labs  # entered after the cut-off
    text, _ = _report(scene, TODAY)
    labs = _between(text, "7. Laboratory abnormalities", "8. Stopping rules")
    assert re.search(r"ALT\s+C1\s+0\s+4\s+1", labs)
    assert re.search(rf"{a}\s+S01\s+C1\s+ALT\s+{days_ago(30)}\s+900 U/L\s+22\.50\s+4", labs)


def test_consort_counts_at_the_cut_off_and_today(app, api):
    scene = _scene(app, api)
    text, _ = _report(scene, CUT_OFF)
    flow = _between(text, "2. CONSORT flow", "3. Dosing timeline")
    assert re.search(r"Enrolled: 3\b", flow) and re.search(r"Dosed: 2\b", flow)
    assert re.search(r"Approached \(screening log\): 3\b", flow)
    text, _ = _report(scene, TODAY)
    flow = _between(text, "2. CONSORT flow", "3. Dosing timeline")
    api_flow = scene["lead"].get(f"/trials/{scene['trial']['id']}/consort").json
    assert (api_flow["approached"], api_flow["enrolled"], api_flow["dosed"]) == (4, 4, 2)
    for label, key in (
        ("Approached \\(screening log\\)", "approached"),
        ("Screened \\(assessment complete\\)", "screened"),
        ("Eligible", "eligible"),
        ("Enrolled", "enrolled"),
        ("Dosed", "dosed"),
        ("Completed primary follow-up", "completed"),
    ):
        assert re.search(rf"{label}: {api_flow[key]}\b", flow), label
    assert re.search(rf"Left before dosing: {sum(api_flow['left_before_dosing'].values())}", flow)
    assert "died 1" in flow  # C died before dosing
