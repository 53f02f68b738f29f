"""The audit trail as a monitor reads it: codes instead of internal ids, field labels, before
and after side by side, a subject-code filter; its CSV reads the same."""

import csv
import io
import re

from tests.builders import days_ago, dose, enrol, world
from tests.factories import login_page
from tests.test_backup import _ae


def signed_in(app, user):
    client = app.test_client()
    login_page(client, user["email"])
    return client


def corrected_subject(w):
    subject = enrol(w["coord"], w["trial"], w["site"])
    assert dose(w["coord"], subject, days_ago(30)).status_code == 201
    visits = w["coord"].get(f"/subjects/{subject['code']}/visits").json
    day7 = next(v for v in visits if v["name"] == "Day 7")
    for on, reason in ((days_ago(23), "entered"), (days_ago(22), "typo in the CRF date")):
        resp = w["coord"].patch(
            f"/visits/{day7['id']}",
            json={"status": "done", "done_on": on.isoformat(), "reason": reason},
        )
        assert resp.status_code == 200, resp.json
    return subject, day7


def test_records_are_named_by_their_codes_and_fields_by_their_labels(app, api):
    w = world(api)
    subject, _ = corrected_subject(w)
    admin = api.as_role("admin")
    html = signed_in(app, admin.user).get("/audit?page_size=200").get_data(as_text=True)
    assert f"visit {subject['code']} Day 7" in html
    correction = re.search(
        r'<tr data-testid="audit-row"[^>]*>(?:(?!data-testid="audit-row").)*typo in the CRF date',
        html,
        re.S,
    )[0]
    assert re.search(
        rf'<th scope="row" class="fw-semibold">Done on</th><td class="audit-old">'
        rf'{days_ago(23).isoformat()}</td><td class="audit-new">{days_ago(22).isoformat()}</td>',
        correction,
    )
    # the enrolment names the site, cohort and screening by their codes, not "None → 2"
    rows = re.split(r'(?=<tr data-testid="audit-row")', html)
    enrolment = [
        r for r in rows if f'data-testid="audit-record">subject {subject["code"]}</td>' in r
    ]
    site = r'<th scope="row" class="fw-semibold">Site</th><td class="audit-old">—</td>'
    assert any(re.search(site + r'<td class="audit-new">S01</td>', r) for r in enrolment)
    cohort = f'<td class="audit-new">{w["trial"]["code"]} C1</td>'
    assert any(cohort in r for r in enrolment)
    assert "subject #" not in html and "visit #" not in html


def test_filter_by_subject_code_shows_only_that_subjects_records(app, api):
    w = world(api)
    subject, _ = corrected_subject(w)
    other = enrol(w["coord"], w["trial"], w["site"])
    client = signed_in(app, api.as_role("admin").user)
    html = client.get(f"/audit?subject={subject['code'].lower()}&page_size=200").get_data(
        as_text=True
    )
    records = re.findall(r'data-testid="audit-record">([^<]*)</td>', html)
    assert records and all(subject["code"] in r or r.startswith("screening S01") for r in records)
    assert f"visit {subject['code']} Day 7" in records
    assert f"dosing of {subject['code']}" in records
    assert not any(other["code"] in r for r in records)
    unknown = client.get("/audit?subject=S01-ZZZZZ")
    assert unknown.status_code == 422 and "No subject S01-ZZZZZ." in unknown.get_data(as_text=True)
    assert 'data-testid="audit-row"' not in unknown.get_data(as_text=True)


def test_the_pages_csv_reads_like_the_page(app, api):
    w = world(api)
    subject, _ = corrected_subject(w)
    client = signed_in(app, api.as_role("consortium_lead").user)
    resp = client.get(f"/audit?subject={subject['code']}&format=csv")
    assert resp.status_code == 200
    assert "audit-trail_" in resp.headers["Content-Disposition"]
    body = resp.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    fixed = [r for r in rows if r["Reason"] == "typo in the CRF date" and r["Field"] == "Done on"]
    assert fixed and fixed[0]["Record"] == f"visit {subject['code']} Day 7"
    assert (fixed[0]["Before"], fixed[0]["After"]) == (
        days_ago(23).isoformat(),
        days_ago(22).isoformat(),
    )


def test_safety_records_read_by_their_subject_and_term_and_belong_to_the_subject(app, api):
    """An adverse event in the audit trail is named by its subject's code and term, its first
    version and its tasks by the same subject, its fields by their labels (SOC, SUSAR) and
    its subject and site by their codes; the subject-code filter shows them, and another
    subject's event only under that subject."""
    w = world(api)
    subject = enrol(w["coord"], w["trial"], w["site"])
    other = enrol(w["coord"], w["trial"], w["site"])
    ids = {}
    for who, term, dosed in ((subject, "Headache", 100), (other, "Nausea", 86)):
        assert dose(w["coord"], who, days_ago(dosed)).status_code == 201  # the stagger apart
        ids[who["code"]] = _ae(w["coord"], who, term)["id"]
    ae_id = ids[subject["code"]]
    client = signed_in(app, api.as_role("admin").user)
    html = client.get(f"/audit?subject={subject['code']}&page_size=200").get_data(as_text=True)
    records = re.findall(r'data-testid="audit-record">([^<]*)</td>', html)
    assert f"adverse event {subject['code']} Headache (#{ae_id})" in records
    assert f"version of {subject['code']} Headache v1" in records
    assert any(r.startswith(f"task for {subject['code']} ") for r in records)
    assert not any(other["code"] in r for r in records)
    rows = re.split(r'(?=<tr data-testid="audit-row")', html)
    (event,) = [r for r in rows if f"adverse event {subject['code']} Headache" in r]
    label = r'<th scope="row" class="fw-semibold">{}</th><td class="audit-old">—</td>'
    assert re.search(
        label.format("Subject") + rf'<td class="audit-new">{subject["code"]}</td>', event
    )
    assert re.search(label.format("Site") + r'<td class="audit-new">S01</td>', event)
    assert re.search(label.format("SOC") + r'<td class="audit-new">Nervous system disorders', event)
    assert label.format("SUSAR") in event
    # an instant in the reader's format and zone, not as stored ("...T...Z")
    aware = re.search(label.format("Site aware at") + r'<td class="audit-new">([^<]*)</td>', event)
    assert aware and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", aware[1]), aware
    assert "subject #" not in html and "adverse event #" not in html
    # a task's empty prefill reads as nothing given, not as a blank
    # the version's recorded fields by the event's labels, in the event form's order (they
    # are stored with sorted keys: "action_taken" first, "term" last)
    (version,) = [r for r in rows if f"version of {subject['code']} Headache v1" in r]
    data = re.search(label.format("Data") + r'<td class="audit-new">([^<]*)</td>', version)
    assert data, version
    fields = [part.split(": ", 1)[0] for part in data[1].split("; ")]
    assert fields[:4] == ["Reported term", "Preferred term", "PT code", "SOC"], fields
    assert fields.index("Onset") < fields.index("Grade") < fields.index("Action taken")
    assert "Reported term: Headache" in data[1] and "Aesi" not in data[1]
    task = next(r for r in rows if f"task for {subject['code']} " in r)
    assert re.search(label.format("Prefill") + r'<td class="audit-new">—</td>', task)
    everything = client.get("/audit?entity=adverse_event&page_size=200").get_data(as_text=True)
    assert f"adverse event {other['code']} Nausea" in everything


def test_a_sites_approvals_and_status_changes_are_named_by_the_sites_code(app, api):
    from trialmgr.extensions import db
    from trialmgr.partners.models import Site, SiteApproval, SiteStatusChange

    w = world(api)
    code = w["site"]["code"]
    with app.app_context():
        site_id = db.session.query(Site.id).filter(Site.code == code).scalar()
        kinds = {k for (k,) in db.session.query(SiteApproval.kind).filter_by(site_id=site_id)}
        changes = {
            c for (c,) in db.session.query(SiteStatusChange.change).filter_by(site_id=site_id)
        }
    assert kinds and changes
    admin = api.as_role("admin")
    html = signed_in(app, admin.user).get("/audit?page_size=200").get_data(as_text=True)
    records = set(re.findall(r'data-testid="audit-record">([^<]*)</td>', html))
    for kind in kinds:
        assert f"approval {code} {kind}" in records, (kind, records)
    for change in changes:
        assert f"status change of {code} {change}" in records, (change, records)
