"""The safety dashboard (issue 12): its JSON and page numbers against a trial built with
counts worked out by hand, the listing behind each number, a coordinator's view limited to
their sites, signals with exact intervals, the subject's safety profile, CSV exports."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.builders import active_site, at, days_ago, dose, enrol, world
from tests.test_enrollment_pages import browser, text

HEP, NERV = "Hepatobiliary disorders", "Nervous system disorders"


def _ae(coord, subject, **fields):
    body = {
        "subject_code": subject["code"],
        "term": "Hepatitis",
        "soc": HEP,
        "onset_date": days_ago(30).isoformat(),
        "grade": 1,
        "causality": "unlikely",
        "expected": True,
        "site_awareness_at": at(days_ago(30), 12),
        **fields,
    }
    resp = coord.post("/adverse-events", json=body)
    assert resp.status_code == 201, resp.json
    return resp.json


@pytest.fixture()
def trial(api):
    """Sites S01 and S02; cohort C1: A and B at S01, C at S02, dosed; cohort C2: D at S01 and
    E at S02, not dosed. The adverse events, by hand:

    | subject | cohort | SOC          | grade | onset   | serious             |
    | A       | C1     | Hepatobiliary | 2    | -60 d   |                     |
    | A       | C1     | Hepatobiliary | 3    | -30 d   | yes, open           |
    | A       | C1     | Nervous       | 1    | -110 d  |                     |
    | B       | C1     | hepatobiliary (lower case) | 1 | -50 d |              |
    | C (S02) | C1     | Hepatobiliary | 3    | -20 d   | yes, resolved; clock submitted |
    | D       | C2     | Hepatobiliary | 3    | -3 d    | SUSAR, open         |
    | E (S02) | C2     | Hepatobiliary | 3    | -5 d    |                     |

    Clocks: sponsor 24 h for A (overdue), C (submitted), D (overdue); FDA, EU and IBC for
    D's SUSAR (15 days, open). ALT: A grade 0 before dosing, grade 3 after; B grade 1 after,
    no draw before."""
    w = world(api)
    lead, coord = w["lead"], w["coord"]
    s02 = active_site(lead, "S02")
    coord2 = api.as_role("coordinator", site_ids=[s02["id"]])
    monitor = api.as_role("safety_monitor")
    t = w["trial"]
    a, b = enrol(coord, t, w["site"]), enrol(coord, t, w["site"])
    c = enrol(coord2, t, s02)
    d, e = enrol(coord, t, w["site"], cohort=2), enrol(coord2, t, s02, cohort=2)
    for coordinator, subject, ago in ((coord, a, 120), (coord, b, 100), (coord2, c, 80)):
        assert dose(coordinator, subject, days_ago(ago)).status_code == 201
    ids = {
        "A_hep2": _ae(
            coord,
            a,
            grade=2,
            onset_date=days_ago(60).isoformat(),
            site_awareness_at=at(days_ago(60), 12),
        )["id"],
        "A_hep3": _ae(coord, a, grade=3, seriousness_criteria=["hospitalisation"])["id"],
        "A_nerv": _ae(
            coord,
            a,
            term="Headache",
            soc=NERV,
            onset_date=days_ago(110).isoformat(),
            site_awareness_at=at(days_ago(110), 12),
        )["id"],
        "B_hep1": _ae(
            coord,
            b,
            soc="hepatobiliary disorders",
            onset_date=days_ago(50).isoformat(),
            site_awareness_at=at(days_ago(50), 12),
        )["id"],
        "E_hep3": _ae(
            coord2,
            e,
            grade=3,
            onset_date=days_ago(5).isoformat(),
            site_awareness_at=at(days_ago(5), 12),
        )["id"],
    }
    c_hep3 = _ae(
        coord2,
        c,
        grade=3,
        seriousness_criteria=["hospitalisation"],
        onset_date=days_ago(20).isoformat(),
        resolution_date=days_ago(15).isoformat(),
        outcome="recovered",
        site_awareness_at=at(days_ago(20), 12),
    )
    ids["C_hep3"] = c_hep3["id"]
    sponsor = next(r for r in c_hep3["expedited_reports"] if r["authority"] == "sponsor")
    submitted = monitor.patch(
        f"/expedited-reports/{sponsor['id']}",
        json={"submitted_at": at(days_ago(20), 20), "reference": "SAE-C"},
    )
    assert submitted.status_code == 200
    aware = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    susar = _ae(
        coord,
        d,
        grade=3,
        seriousness_criteria=["hospitalisation"],
        causality="possible",
        expected=False,
        aesi=True,
        aesi_category="hepatotoxicity",
        onset_date=days_ago(3).isoformat(),
        site_awareness_at=aware,
    )
    assert susar["susar"] is True
    ids["D_hep3"] = susar["id"]
    for subject, value, ago, hour in ((a, 30, 121, 8), (a, 250, 60, 8), (b, 60, 50, 8)):
        resp = coord.post(
            "/labs",
            json={
                "subject_code": subject["code"],
                "analyte": "ALT",
                "value": value,
                "unit": "U/L",
                "uln": 40,
                "collected_at": at(days_ago(ago), hour),
            },
        )
        assert resp.status_code == 201, resp.json
    assert lead.get(f"/trials/{t['id']}").json["status"] == "open"  # no rule fired
    return {
        **w,
        "s02": s02,
        "coord2": coord2,
        "monitor": monitor,
        "subjects": {"A": a, "B": b, "C": c, "D": d, "E": e},
        "ids": ids,
        "cohorts": {c["label"]: c["id"] for c in t["cohorts"]},
    }


def _summary(client, trial, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    resp = client.get(f"/trials/{trial['trial']['id']}/safety-summary?{query}")
    assert resp.status_code == 200, resp.json
    return resp.json


def _table(summary):
    return {
        (r["soc"], r["worst_grade"], r["cohort"]): (r["subjects"], r["events"])
        for r in summary["by_soc_grade_cohort"]
    }


# --- the JSON --------------------------------------------------------------------------


def test_summary_counts_each_subject_once_at_their_worst_grade_per_soc_and_cohort(trial):
    s = _summary(trial["monitor"], trial)
    assert _table(s) == {
        (HEP, 1, "C1"): (1, 1),  # B (its lower-case SOC is the same SOC)
        (HEP, 3, "C1"): (2, 3),  # A (grades 2 and 3: worst 3, two events) and C
        (NERV, 1, "C1"): (1, 1),  # A
        (HEP, 3, "C2"): (2, 2),  # D and E
    }
    assert (s["events"], s["subjects_with_events"]) == (7, 5)
    assert (s["open_saes"], s["saes"], s["susars"], s["aesis"]) == (2, 3, 1, 1)
    assert (s["overdue_reports"], s["open_reports"]) == (2, 5)
    assert s["paused"] is False
    grades = {(r["cohort"], r["grade"]): r["events"] for r in s["by_grade_cohort"]}
    assert grades == {("C1", 1): 2, ("C1", 2): 1, ("C1", 3): 2, ("C2", 3): 2}
    assert [(r["category"], r["cohort"], r["subjects"]) for r in s["aesi_by_category"]] == [
        ("hepatotoxicity", "C2", 1)
    ]


def test_clocks_are_listed_by_due_date_with_the_overdue_ones_flagged(trial):
    clocks = _summary(trial["monitor"], trial)["clocks"]
    dues = [c["due_at"] for c in clocks]
    assert dues == sorted(dues)
    assert [(c["authority"], c["overdue"]) for c in clocks[:2]] == [
        ("sponsor", True),
        ("sponsor", True),
    ]
    assert sorted(c["authority"] for c in clocks[2:]) == ["EU", "FDA", "IBC"]
    assert not any(c["overdue"] for c in clocks[2:])
    # each due time also on the site's clock, with the site's zone
    for c in clocks:
        zone = ZoneInfo(c["site_timezone"])
        due = datetime.fromisoformat(c["due_at"]).astimezone(zone)
        assert c["due_at_local"] == f"{due:%Y-%m-%d %H:%M} {due.tzname()} ({zone.key})"


def test_a_clocks_due_time_is_also_given_on_its_sites_clock(app, trial):
    """The summary's clock rows carry the site's zone and the due time on the site's clock
    (what the clock pages show), not only the UTC instant."""
    from trialmgr.extensions import db
    from trialmgr.partners.models import Site

    with app.app_context():
        db.session.execute(
            sa.update(Site)
            .where(Site.id == trial["site"]["id"])
            .values(timezone="America/New_York")
        )
        db.session.commit()
    clocks = _summary(trial["monitor"], trial)["clocks"]
    ny = [c for c in clocks if c["site"] == trial["site"]["code"]]
    assert ny and all(c["site_timezone"] == "America/New_York" for c in ny)
    for c in ny:
        due = datetime.fromisoformat(c["due_at"]).astimezone(ZoneInfo("America/New_York"))
        assert c["due_at_local"] == f"{due:%Y-%m-%d %H:%M} {due.tzname()} (America/New_York)"
        assert due.tzname() in ("EST", "EDT")


def test_lab_shifts_compare_the_last_draw_before_dosing_with_the_worst_after(trial):
    shifts = _summary(trial["monitor"], trial)["lab_shifts"]
    assert [
        (r["analyte"], r["cohort"], r["baseline_grade"], r["worst_grade"], r["subjects"])
        for r in shifts
    ] == [("ALT", "C1", None, 1, 1), ("ALT", "C1", 0, 3, 1)]
    alt = _summary(trial["monitor"], trial)["alt_series"]
    a = trial["subjects"]["A"]["code"]
    assert alt[0]["subject_code"] == a and alt[0]["peak"] == 6.25
    assert alt[0]["points"] == [
        {"day": -1, "uln_multiple": 0.75, "grade": 0},  # the draw before dosing
        {"day": 60, "uln_multiple": 6.25, "grade": 3},
    ]


def test_filters_by_onset_dates_cohort_and_site(trial):
    since = _summary(trial["monitor"], trial, since=days_ago(45).isoformat())
    assert _table(since) == {(HEP, 3, "C1"): (2, 2), (HEP, 3, "C2"): (2, 2)}
    c2 = _summary(trial["monitor"], trial, cohort_id=trial["cohorts"]["C2"])
    assert _table(c2) == {(HEP, 3, "C2"): (2, 2)}
    assert (c2["open_saes"], c2["overdue_reports"]) == (1, 1)
    s02 = _summary(trial["monitor"], trial, site_id=trial["s02"]["id"])
    assert _table(s02) == {(HEP, 3, "C1"): (1, 1), (HEP, 3, "C2"): (1, 1)}
    bad = trial["monitor"].get(
        f"/trials/{trial['trial']['id']}/safety-summary?since={days_ago(1)}&until={days_ago(9)}"
    )
    assert bad.status_code == 422


def test_a_coordinator_sees_only_their_sites(trial):
    mine = _summary(trial["coord"], trial)
    assert _table(mine) == {
        (HEP, 1, "C1"): (1, 1),
        (HEP, 3, "C1"): (1, 2),
        (NERV, 1, "C1"): (1, 1),
        (HEP, 3, "C2"): (1, 1),
    }
    assert (mine["open_saes"], mine["overdue_reports"], mine["events"]) == (2, 2, 5)
    theirs = _summary(trial["coord2"], trial)
    assert _table(theirs) == {(HEP, 3, "C1"): (1, 1), (HEP, 3, "C2"): (1, 1)}
    assert (theirs["open_saes"], theirs["overdue_reports"], theirs["clocks"]) == (0, 0, [])
    assert theirs["alt_series"] == [] and theirs["lab_shifts"] == []
    codes = {trial["subjects"][k]["code"] for k in "ABD"}
    assert not codes & {e["subject_code"] for e in theirs["aesi"]}
    other = trial["coord2"].get(
        f"/trials/{trial['trial']['id']}/safety-summary?site_id={trial['site']['id']}"
    )
    assert other.status_code == 404


def test_pause_shows_on_the_summary(trial):
    tid = trial["trial"]["id"]
    trial["monitor"].post(f"/trials/{tid}/pause", json={"reason": "DSMB ad hoc review"})
    s = _summary(trial["coord2"], trial)
    assert s["paused"] is True and "DSMB ad hoc review" in s["paused_reason"]
    rules = {r["kind"]: r for r in s["stopping_rules"]}
    assert set(rules) >= {"death_related", "same_soc_grade3"} and not rules["hys_law"]["firings"]


# --- signals -----------------------------------------------------------------------------


def test_signals_give_incidence_among_dosed_subjects_with_exact_intervals(trial):
    resp = trial["monitor"].get(f"/trials/{trial['trial']['id']}/safety-signals")
    assert resp.status_code == 200, resp.json
    table = resp.json
    assert [(c["label"], c["dosed"]) for c in table["cohorts"]] == [("C1", 3), ("C2", 0), ("C3", 0)]
    rows = {(r["group"], r["key"]): r["cells"][0] for r in table["rows"]}
    hep = rows[("soc", HEP)]
    # A, B and C all had a hepatobiliary event: 3/3, Clopper-Pearson [29.2, 100] %
    assert (hep["subjects"], hep["dosed"], hep["ci_low"], hep["ci_high"]) == (3, 3, 29.2, 100.0)
    # first onsets on study days 60 (A: dosed 120 days ago, event 60 days ago), 50, 60
    assert (hep["onset_median"], hep["onset_min"], hep["onset_max"]) == (60, 50, 60)
    g3 = rows[("measure", "grade3")]
    assert (g3["subjects"], g3["percent"], g3["ci_low"], g3["ci_high"]) == (2, 66.7, 9.4, 99.2)
    nerv = rows[("soc", NERV)]
    assert (nerv["subjects"], nerv["ci_low"], nerv["ci_high"], nerv["onset_median"]) == (
        1,
        0.8,
        90.6,
        10,
    )
    assert ("aesi", "hepatotoxicity") not in rows  # D has it, but D was not dosed


# --- the pages ---------------------------------------------------------------------------


def _row(html, soc, cohort, grade):
    match = re.search(
        rf'<tr data-soc="{soc}" data-cohort="{cohort}" data-grade="{grade}".*?</tr>', html, re.S
    )
    assert match, (soc, cohort, grade)
    return match.group(0)


def _link(cell_html):
    match = re.search(r'href="([^"]+)"[^>]*>(\d+)</a>', cell_html)
    return match.group(1).replace("&amp;", "&"), int(match.group(2))


def assert_clean(html):
    """Strict CSP: no inline styles or scripts (scripts only by src)."""
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


def test_the_page_shows_the_same_numbers_and_each_opens_its_listing(app, trial):
    page = browser(app, trial["monitor"])
    resp = page.get(f"/safety/trials/{trial['trial']['id']}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert_clean(html)
    assert "Each subject is counted once per SOC and cohort" in html
    row = _row(html, HEP, "C2", 3)
    subjects_cell = re.search(r'class="text-end subjects">(.*?)</td>', row, re.S).group(1)
    events_cell = re.search(r'class="text-end events">(.*?)</td>', row, re.S).group(1)
    (href, subjects), (_, events) = _link(subjects_cell), _link(events_cell)
    assert (subjects, events) == (2, 2)
    listing = page.get(href).get_data(as_text=True)
    assert_clean(listing)
    shown = set(map(int, re.findall(r'<tr id="ae-(\d+)"', listing)))
    assert shown == {trial["ids"]["D_hep3"], trial["ids"]["E_hep3"]}
    c1 = _row(html, HEP, "C1", 3)
    href, events = _link(re.search(r'class="text-end events">(.*?)</td>', c1, re.S).group(1))
    listing = page.get(href).get_data(as_text=True)
    shown = set(map(int, re.findall(r'<tr id="ae-(\d+)"', listing)))
    assert events == 3 and shown == {trial["ids"][k] for k in ("A_hep2", "A_hep3", "C_hep3")}
    for stat, number in (("open-saes", 2), ("susars", 1), ("overdue-reports", 2)):
        cell = re.search(rf'id="{stat}">(.*?)</div>', html, re.S).group(1)
        href, shown_number = _link(cell)
        assert shown_number == number, stat
        assert page.get(href).status_code == 200
    overdue = page.get(
        _link(re.search(r'id="overdue-reports">(.*?)</div>', html, re.S).group(1))[0]
    )
    assert (
        len(re.findall(r'<tr id="clock-\d+" class="table-danger"', overdue.get_data(as_text=True)))
        == 2
    )


def test_open_saes_listing_holds_exactly_the_open_serious_events(app, trial):
    page = browser(app, trial["monitor"])
    tid = trial["trial"]["id"]
    html = page.get(f"/safety/trials/{tid}/events?open=true").get_data(as_text=True)
    shown = set(map(int, re.findall(r'<tr id="ae-(\d+)"', html)))
    assert shown == {trial["ids"]["A_hep3"], trial["ids"]["D_hep3"]}
    assert "<strong>2</strong> events in <strong>2</strong> subjects" in html


def test_a_coordinators_page_shows_only_their_sites(app, trial):
    page = browser(app, trial["coord2"])
    html = page.get(f"/safety/trials/{trial['trial']['id']}").get_data(as_text=True)
    for key in "ABD":
        assert trial["subjects"][key]["code"] not in html
    assert "You see the subjects of your own sites only." in html
    assert re.search(r'id="open-saes">\s*<a[^>]*>0</a>', html)
    assert (
        _link(
            re.search(r'class="text-end events">(.*?)</td>', _row(html, HEP, "C2", 3), re.S).group(
                1
            )
        )[1]
        == 1
    )
    events = page.get(f"/safety/trials/{trial['trial']['id']}/events").get_data(as_text=True)
    shown = set(map(int, re.findall(r'<tr id="ae-(\d+)"', events)))
    assert shown == {trial["ids"]["C_hep3"], trial["ids"]["E_hep3"]}
    other_site = page.get(f"/safety/trials/{trial['trial']['id']}?site_id={trial['site']['id']}")
    assert other_site.status_code == 404
    assert page.get(f"/safety/subjects/{trial['subjects']['A']['code']}").status_code == 404


def test_lab_shift_cells_open_the_draws_of_their_subjects(app, trial):
    page = browser(app, trial["monitor"])
    tid, c1 = trial["trial"]["id"], trial["cohorts"]["C1"]
    html = page.get(
        f"/safety/trials/{tid}/labs?analyte=ALT&cohort_id={c1}&baseline_grade=0&worst_grade=3"
    ).get_data(as_text=True)
    assert_clean(html)
    assert "<strong>2</strong> draws of <strong>1</strong> subject" in html  # A: before and after
    assert trial["subjects"]["A"]["code"] in html and trial["subjects"]["B"]["code"] not in html


def test_listings_export_as_csv(app, trial):
    page = browser(app, trial["monitor"])
    tid = trial["trial"]["id"]
    c2 = trial["cohorts"]["C2"]
    resp = page.get(f"/safety/trials/{tid}/events.csv?soc={HEP}&worst_grade=3&cohort_id={c2}")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert {int(r["id"]) for r in rows} == {trial["ids"]["D_hep3"], trial["ids"]["E_hep3"]}
    clocks = list(
        csv.DictReader(
            io.StringIO(
                page.get(f"/safety/trials/{tid}/clocks.csv?status=overdue")
                .get_data()
                .decode("utf-8-sig")
            )
        )
    )
    assert [r["authority"] for r in clocks] == ["sponsor", "sponsor"]
    labs = page.get(f"/safety/trials/{tid}/labs.csv?analyte=ALT").get_data().decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(labs)))) == 3


def test_user_text_is_escaped_on_the_dashboard_pages(app, trial):
    a = trial["subjects"]["A"]
    _ae(trial["coord"], a, term="<script>alert(1)</script>", soc="<b>Eye disorders</b>")
    page = browser(app, trial["monitor"])
    tid = trial["trial"]["id"]
    for path in (
        f"/safety/trials/{tid}",
        f"/safety/trials/{tid}/events",
        f"/safety/subjects/{a['code']}",
    ):
        html = page.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<b>Eye" not in html, path
        assert "&lt;b&gt;Eye disorders&lt;/b&gt;" in html, path
        assert_clean(html)


def test_the_subject_profile_puts_events_labs_dosing_and_tasks_on_one_timeline(app, trial):
    page = browser(app, trial["monitor"])
    a = trial["subjects"]["A"]
    resp = page.get(f"/safety/subjects/{a['code']}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert_clean(html)
    assert 'data-chart="uln"' in html and 'aria-describedby="labs"' in html
    timeline = text(resp).split("Timeline", 1)[1].split("Adverse events", 1)[0]
    assert "Dosed 1e13 vg/kg" in timeline
    assert "ALT 250 U/L (6.25 x ULN), grade 3" in timeline
    assert "Hepatitis (Hepatobiliary disorders), grade 3; serious" in timeline
    assert "open task" in timeline  # the medical reviews and the lab's AE task
    days = [
        int(d)
        for d in re.findall(
            r'<td class="text-end">(-?\d+)</td>',
            html.split('id="timeline"')[1].split("</table>")[0],
        )
    ]
    assert days == sorted(days) and days[0] == 0  # dosing first (a normal lab is not an event)


def test_signals_page_and_the_trial_pages_cohort_comparison(app, trial):
    page = browser(app, trial["monitor"])
    tid = trial["trial"]["id"]
    html = page.get(f"/safety/trials/{tid}/signals").get_data(as_text=True)
    assert_clean(html)
    assert "3/3" in text(page.get(f"/safety/trials/{tid}/signals")).replace(" /", "/")
    trial_page = page.get(f"/trials/{tid}").get_data(as_text=True)
    assert 'id="cohort-comparison"' in trial_page and 'id="review-form"' in trial_page
    assert trial_page.index('id="cohort-comparison"') < trial_page.index('id="review-form"')
    assert "[9.4\u201399.2]" in trial_page  # grade 3 or more: 2 of 3 dosed in C1


def test_charts_carry_their_data_and_point_at_their_tables(app, trial):
    page = browser(app, trial["monitor"])
    html = page.get(f"/safety/trials/{trial['trial']['id']}").get_data(as_text=True)
    assert 'data-chart="grades"' in html and 'aria-describedby="grade-table"' in html
    assert 'id="grade-table"' in html and 'id="alt-table"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "js/safety-charts.js" in html


def test_every_role_opens_the_dashboard_from_the_menu(app, api, trial):
    for client in (trial["monitor"], trial["lead"], trial["coord"], api.as_role("admin")):
        page = browser(app, client)
        home = page.get("/").get_data(as_text=True)
        assert 'href="/safety"' in home and 'href="/efficacy"' in home
        resp = page.get("/safety")
        assert resp.status_code == 302 and f"/safety/trials/{trial['trial']['id']}" in resp.location


def test_a_filter_too_large_for_the_database_is_refused_before_the_csv_streams(app, trial):
    """The listing's rows are read once the response has started: an id beyond the database's
    integer range must be refused while the request is read (found by the API fuzzing)."""
    page = browser(app, trial["monitor"])
    tid = trial["trial"]["id"]
    for kind in ("events", "clocks", "labs"):
        for name in ("site_id", "cohort_id"):
            resp = page.get(f"/safety/trials/{tid}/{kind}.csv?{name}={10**30}")
            body = resp.get_data()  # raises if the stream breaks
            assert resp.status_code < 500 and resp.mimetype != "text/csv", (kind, name, body[:200])


def test_the_dashboards_clock_and_aesi_rows_are_what_the_listings_show_for_them(app, trial):
    """The summary reads its clock and AESI rows as columns (no ORM objects); each clock row
    holds the clock's values with its event's, subject's and site's as the ORM reads them and
    the clock's state on the site's calendar, and the AESI rows the event's values with its
    subject's and site's codes."""
    from trialmgr.clock import utcnow
    from trialmgr.enrollment.models import Trial
    from trialmgr.extensions import db
    from trialmgr.safety.models import AdverseEvent, ExpeditedReport
    from trialmgr.safety.services import clocks, summary
    from trialmgr.safety.services.scope import Scope

    now = utcnow()
    with app.app_context():
        t = db.session.get(Trial, trial["trial"]["id"])
        scope = Scope(t, None)  # every site, as a safety monitor reads it
        rows = summary.open_clocks(scope, now)
        reports = db.session.scalars(
            sa.select(ExpeditedReport)
            .where(ExpeditedReport.submitted_at.is_(None), ExpeditedReport.trial_id == t.id)
            .order_by(ExpeditedReport.due_at, ExpeditedReport.id)
        ).all()
        assert len(rows) == 5
        assert rows == [
            {
                "id": r.id,
                "adverse_event_id": r.adverse_event.id,
                "subject_code": r.adverse_event.subject.code,
                "site": r.adverse_event.subject.site.code,
                "site_timezone": r.adverse_event.subject.site.timezone,
                "term": r.adverse_event.term,
                "authority": r.authority,
                "kind": r.kind,
                "clock_start": r.clock_start,
                "due_at": r.due_at,
                "submitted_at": r.submitted_at,
                "reference": r.reference,
                "late": r.late,
                **clocks.state(r, now),
            }
            for r in reports
        ]
        aesis = summary.recent_aesis(scope)
        d = db.session.get(AdverseEvent, trial["ids"]["D_hep3"])
        assert aesis == [
            {
                "id": d.id,
                "subject_code": trial["subjects"]["D"]["code"],
                "site": trial["site"]["code"],
                "cohort_id": d.cohort_id,
                "term": d.term,
                "soc": d.soc,
                "grade": 3,
                "onset_date": days_ago(3),
                "resolution_date": None,
                "serious": True,
                "susar": True,
                "aesi": True,
                "aesi_category": "hepatotoxicity",
                "causality": d.causality,
                "outcome": d.outcome,
            }
        ]


def test_the_clock_listing_shows_and_exports_each_clock_with_its_state(app, trial):
    """The reporting-clocks page and its CSV read the clocks as rows (the summary's select):
    each status tab lists exactly its clocks, soonest due first, with days left on the site's
    calendar and the clock's state; a coordinator sees only their own sites' clocks."""
    from trialmgr.clock import utcnow
    from trialmgr.extensions import db
    from trialmgr.safety.models import ExpeditedReport
    from trialmgr.safety.services import clocks

    tid = trial["trial"]["id"]
    now = utcnow()
    with app.app_context():
        reports = db.session.scalars(
            sa.select(ExpeditedReport)
            .where(ExpeditedReport.trial_id == tid)
            .order_by(ExpeditedReport.due_at, ExpeditedReport.id)
        ).all()
        states = {r.id: clocks.state(r, now) for r in reports}
        sites = {r.id: r.adverse_event.subject.site.code for r in reports}
    expected = {
        "open": [i for i, s in states.items() if s["status"] != "submitted"],
        "overdue": [i for i, s in states.items() if s["status"] == "overdue"],
        "submitted": [i for i, s in states.items() if s["status"] == "submitted"],
        "all": list(states),
    }
    assert all(expected.values()), expected  # the fixture has clocks of every state
    page = browser(app, trial["monitor"])
    for status, ids in expected.items():
        html = page.get(f"/safety/trials/{tid}/clocks?status={status}").get_data(as_text=True)
        assert_clean(html)
        assert [int(i) for i in re.findall(r'<tr id="clock-(\d+)"', html)] == ids, status
        assert f"<strong>{len(ids)}</strong> clock" in html
        rows = list(
            csv.DictReader(
                io.StringIO(
                    page.get(f"/safety/trials/{tid}/clocks.csv?status={status}")
                    .get_data()
                    .decode("utf-8-sig")
                )
            )
        )
        assert [int(r["id"]) for r in rows] == ids, status
        for r in rows:
            state = states[int(r["id"])]
            # A submitted clock has no days left, in the CSV as on the page.
            left = None if state["status"] == "submitted" else str(state["days_left"])
            assert (r["status"], r["days_left"] or None, r["site"]) == (
                state["status"],
                left,
                sites[int(r["id"])],
            )
    theirs = browser(app, trial["coord2"])
    html = theirs.get(f"/safety/trials/{tid}/clocks?status=all").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'<tr id="clock-(\d+)"', html)]
    assert shown and shown == [i for i in expected["all"] if sites[i] == "S02"]
