"""The PDFs say what the database says: numbers read back from the generated file and checked
against the records of a constructed trial; user text printed as typed; every page carries
"page x of y" and the audit head the report was made at."""

import re
from collections import Counter

import sqlalchemy as sa

from tests.builders import TODAY, at, days_ago
from tests.reports_helpers import (
    CUT_OFF,
    DECLINE_REASON,
    STATED_REASON,
    constructed_trial,
    generate,
    pdf_pages,
    pdf_text,
    pdf_words,
)
from trialmgr.audit.models import AuditEvent
from trialmgr.enrollment.services.visits import visit_state
from trialmgr.extensions import db


def _site_report(api, scene, **extra):
    lead = scene["lead"]
    report = generate(
        lead,
        kind="site_enrollment",
        trial_id=scene["trial"]["id"],
        cut_off=CUT_OFF.isoformat(),
        **extra,
    )
    resp = lead.get(f"/reports/{report['id']}/pdf")
    assert resp.status_code == 200
    return report, resp.data


def _screening_counts(client, trial_id, site_id):
    rows = client.get(f"/screenings?trial_id={trial_id}&site_id={site_id}&page_size=1000").json
    outcomes = Counter(r["outcome"] for r in rows)
    consented = sum(1 for r in rows if r.get("consented_on"))
    return len(rows), outcomes, consented


def test_site_report_screening_log_matches_the_database(app, api):
    scene = constructed_trial(api)
    _, data = _site_report(api, scene)
    text = pdf_text(data)
    trial_id = scene["trial"]["id"]
    for code, site, coord in (
        ("S01", scene["site"], scene["coord"]),
        ("S02", scene["other"], scene["coord2"]),
    ):
        screened, outcomes, consented = _screening_counts(coord, trial_id, site["id"])
        enrolled = len(coord.get(f"/subjects?trial_id={trial_id}&site_id={site['id']}").json)
        row = re.search(
            rf"^\s*{code}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", text, re.M
        )
        assert row, f"no screening log row for {code}"
        assert [int(n) for n in row.groups()] == [
            screened,
            outcomes["pending"],
            outcomes["eligible"],
            outcomes["screen_failed"],
            outcomes["declined"],
            consented,
            enrolled,
        ]
    # and the scenario is the one we meant
    assert re.search(r"S01\s+8\s+1\s+3\s+3\s+1\s+2\s+2", text)
    assert re.search(r"All sites\s+10\s+1\s+4\s+4\s+1\s+3\s+3", text)


def test_site_report_screen_failures_by_reason_and_user_text_as_typed(app, api):
    scene = constructed_trial(api)
    _, data = _site_report(api, scene)
    text = pdf_text(data)
    assert re.search(r"I1: Severe haemophilia B \(FIX < 2%\)\s+2\b", text)
    assert re.search(r"E1: Neutralising anti-AAV antibodies\s+1\b", text)
    # markup characters in user text print as typed, neither parsed nor dropped
    words = pdf_words(data)
    assert STATED_REASON in words
    assert DECLINE_REASON in words


def test_site_report_enrolment_and_visits_match_the_database(app, api):
    scene = constructed_trial(api)
    _, data = _site_report(api, scene)
    text, words = pdf_text(data), pdf_words(data)
    assert "Enrolled 2 of a target of 4 (50 %); dosed 1; left the trial 0." in words
    assert "Enrolled 1 of a target of 4 (25 %); dosed 0; left the trial 0." in words
    coord = scene["coord"]
    subjects = coord.get(f"/subjects?trial_id={scene['trial']['id']}").json
    for subject in subjects:
        assert subject["code"] in text
    states = Counter()
    for visit in coord.get(f"/subjects/{scene['first']['code']}/visits").json:
        row = type("V", (), {k: v for k, v in visit.items()})
        row.window_start = _date(visit["window_start"])
        row.window_end = _date(visit["window_end"])
        states[visit_state(row, CUT_OFF)] += 1
    assert states["overdue"] == 3
    row = re.search(r"^\s*S01\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", text, re.M)
    assert row and [int(n) for n in row.groups()][1:3] == [states["due"], states["overdue"]]


def _date(text):
    from datetime import date

    return date.fromisoformat(text)


def test_every_page_has_page_x_of_y_and_the_audit_head_it_was_made_at(app, api):
    scene = constructed_trial(api)
    report, data = _site_report(api, scene)
    pages = pdf_pages(data)
    assert len(pages) >= 4
    head = report["audit_head"]
    for number, page in enumerate(pages, start=1):
        assert re.search(rf"Page {number} of {len(pages)}\b", page), page[-200:]
        assert head in page
    assert f"Data cut-off {CUT_OFF.isoformat()}" in pages[1]
    with app.app_context():
        # the head is a real row of the chain, and the chain went on after it (the report's
        # own completion and download are audited)
        row = db.session.execute(sa.select(AuditEvent.id).where(AuditEvent.hash == head)).scalar()
        newer = db.session.execute(
            sa.select(sa.func.count()).where(AuditEvent.id > row)
        ).scalar_one()
    assert row is not None and newer >= 2


def test_one_site_report_holds_only_that_site(app, api):
    scene = constructed_trial(api)
    _, data = _site_report(api, scene, site_id=scene["site"]["id"])
    text = pdf_text(data)
    assert "S01 · Site S01" in text
    assert "S02" not in text
    assert "Scope" in text and "Site S01 (Site S01)" in text


def test_long_listings_are_split_into_tables_with_their_headers(app):
    from reportlab.platypus import Table

    from trialmgr.reports.builders.layout import Column, data_table

    rows = ((f"S01-{i:05d}", f"<b>term</b> & {i}") for i in range(1234))
    tables = list(data_table([Column("Subject", 0.3), Column("Term", 0.7, wrap=True)], rows))
    assert [len(t._cellvalues) for t in tables] == [501, 501, 235]
    assert all(isinstance(t, Table) and t.repeatRows == 1 for t in tables)
    assert all(t._cellvalues[0] == ["Subject", "Term"] for t in tables)


def test_listing_cells_are_styled_as_the_report_sets_them_with_one_style_per_kind(app):
    """Every cell of a listing: the report's font at 8 pt on 10 pt leading, ink colour, top
    aligned, 4 pt side and 2.5 pt top and bottom padding; the header bold; numeric columns
    right-aligned, header included; shared styles (one per kind of cell, not per cell), and
    a table split across pages keeps them."""
    from reportlab.platypus import Table

    from trialmgr.reports.builders.layout import FONT, FONT_BOLD, INK, Column, data_table

    columns = [Column("Subject", 0.3), Column("Events", 0.2, right=True)]
    rows = ((f"S01-{i:05d}", i) for i in range(120))
    (table,) = list(data_table(columns, rows))
    assert isinstance(table, Table)
    styles = table._cellStyles
    assert len(styles) == 121
    for row_number, row in enumerate(styles):
        for column, style in zip(columns, row, strict=True):
            assert style.fontname == (FONT_BOLD if row_number == 0 else FONT)
            assert (style.fontsize, style.leading, style.color) == (8, 10, INK)
            assert (style.valign, style.alignment) == ("TOP", "RIGHT" if column.right else "LEFT")
            assert (style.leftPadding, style.rightPadding) == (4, 4)
            assert (style.topPadding, style.bottomPadding) == (2.5, 2.5)
    assert len({id(style) for row in styles for style in row}) == 4
    first, rest = table.split(500, 300)
    assert rest._cellStyles[0] == styles[0]  # the repeated header keeps the header's style
    assert first._cellStyles[1] == styles[1]


def test_dsmb_report_sections_match_the_records(app, api):
    scene = constructed_trial(api)
    lead, coord = scene["lead"], scene["coord"]
    first = scene["first"]
    trial = scene["trial"]
    term = "Hepatitis <b>acute</b> & cholestatic"
    ae = coord.post(
        "/adverse-events",
        json={
            "subject_code": first["code"],
            "term": term,
            "soc": "Hepatobiliary disorders",
            "onset_date": days_ago(30).isoformat(),
            "grade": 2,
            "seriousness_criteria": ["hospitalisation"],
            "causality": "possible",
            "expected": False,
            "site_awareness_at": at(days_ago(29)),
        },
    )
    assert ae.status_code == 201, ae.json
    clocks = ae.json["expedited_reports"]
    monitor = api.as_role("safety_monitor")
    sponsor = next(c for c in clocks if c["authority"] == "sponsor")
    fda = next(c for c in clocks if c["authority"] == "FDA")
    assert (
        monitor.patch(
            f"/expedited-reports/{sponsor['id']}",
            json={"submitted_at": at(days_ago(29), 12), "reference": "SP-1"},
        ).status_code
        == 200
    )
    assert (
        monitor.patch(
            f"/expedited-reports/{fda['id']}",
            json={"submitted_at": at(days_ago(2), 12), "reference": "FDA-1"},
        ).status_code
        == 200
    )
    # cut off today: the records were all entered today (a report counts what was entered
    # by the end of its cut-off day)
    report = generate(monitor, kind="dsmb_safety", trial_id=trial["id"], cut_off=TODAY.isoformat())
    data = lead.get(f"/reports/{report['id']}/pdf").data
    text, words = pdf_text(data), pdf_words(data)
    assert term in words
    listed = lead.get(f"/expedited-reports?trial_id={trial['id']}").json
    due = [c for c in listed if _date(c["due_at"][:10]) <= TODAY]
    late = [c for c in listed if c["submitted_at"] and c["submitted_at"] > c["due_at"]]
    on_time = [c for c in listed if c["submitted_at"] and c["submitted_at"] <= c["due_at"]]
    overdue = [c for c in due if not c["submitted_at"]]
    assert (len(on_time), len(late), len(overdue)) == (1, 1, len(overdue))
    started = re.search(
        r"(\d+) reporting clock\(s\) started by the cut-off; (\d+) were due or submitted by "
        r"then: (\d+) submitted on time, (\d+) late, (\d+) overdue",
        words,
    )
    assert started, words
    assert [int(n) for n in started.groups()] == [
        len(listed),
        len(on_time) + len(late) + len(overdue),
        len(on_time),
        len(late),
        len(overdue),
    ]
    # cohorts: C1 holds the three enrolled subjects, one dosed
    assert re.search(r"C1\s+1e13 vg/kg\s+3\s+3\s+1\s+0\s+3 of 3", text)
    assert "Not yet in this report" not in text and "CONSORT flow" in text
    assert "Audit chain head" in text and report["audit_head"] in text


def test_dosing_timeline_shows_the_gap_and_the_stagger(app, api):
    from tests.builders import dose, enrol, world

    w = world(api)
    coord = w["coord"]
    a = enrol(coord, w["trial"], w["site"])
    b = enrol(coord, w["trial"], w["site"])
    assert dose(coord, a, days_ago(60)).status_code == 201
    assert dose(coord, b, days_ago(40), hour=12).status_code == 201
    report = generate(
        w["lead"], kind="dsmb_safety", trial_id=w["trial"]["id"], cut_off=TODAY.isoformat()
    )
    text = pdf_text(w["lead"].get(f"/reports/{report['id']}/pdf").data)
    assert re.search(rf"C1\s+1\s+{a['code']}\s+S01\s+.*\s+sentinel\s+kept", text)
    assert re.search(rf"C1\s+2\s+{b['code']}\s+S01\s+.*\s+20\.1\s+kept", text)
    assert "at least 14 days (336 hours) apart" in pdf_words(
        w["lead"].get(f"/reports/{report['id']}/pdf").data
    )


def test_a_long_table_repeats_its_header_on_every_page(app):
    import io
    from datetime import date

    from trialmgr.reports.builders.document import NumberedCanvas, PageFrame, ReportDocument
    from trialmgr.reports.builders.layout import Column, data_table

    output = io.BytesIO()
    frame = PageFrame("GT-99", "Listing", date(2026, 1, 31), "ab" * 32)
    rows = ((f"S01-{i:05d}", f"2026-01-{1 + i % 28:02d}", f"term {i}") for i in range(1200))
    columns = [Column("Subject code", 0.3), Column("Onset", 0.2), Column("Term", 0.5)]
    ReportDocument(output, frame).build(list(data_table(columns, rows)), canvasmaker=NumberedCanvas)
    pages = pdf_pages(output.getvalue())
    assert len(pages) > 10
    for number, page in enumerate(pages, start=1):
        assert re.search(r"Subject code\s+Onset\s+Term", page), f"page {number} has no header"
        assert f"Page {number} of {len(pages)}" in page
        assert "ab" * 32 in page
    assert "S01-00000" in pages[0] and "S01-01199" in pages[-1]


def test_the_story_is_drawn_from_its_sections_as_it_goes(app):
    import io
    from datetime import date

    from reportlab.platypus import Paragraph

    from trialmgr.reports.builders.document import NumberedCanvas, PageFrame, ReportDocument
    from trialmgr.reports.builders.layout import STYLES
    from trialmgr.reports.builders.registry import LazyStory

    produced, drawn = [], []

    def flowables():
        for i in range(3000):
            produced.append(i)
            style = STYLES["h2"] if i % 50 == 0 else STYLES["body"]  # keep-with-next headings
            yield Paragraph(f"line {i}", style)

    class Watching(ReportDocument):
        def afterFlowable(self, flowable):
            drawn.append(len(produced))

    frame = PageFrame("GT-99", "Listing", date(2026, 1, 31), "0" * 64)
    story = LazyStory(flowables())
    assert story[:2] and len(produced) < 20  # a slice does not drain the generator
    Watching(io.BytesIO(), frame).build(story, canvasmaker=NumberedCanvas)
    assert len(produced) == 3000
    assert drawn[0] < 20  # the first flowable was drawn before the rest were made
