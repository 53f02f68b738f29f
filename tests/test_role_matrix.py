"""The role matrix: every API operation and page route, by every role, on own and other site.

The table below is the specification, written by hand from ARCHITECTURE.md's role table
("who creates what"): a new route fails this test until it is added here, a route whose
declared roles drift from the table fails, and every route is called as every role:
roles outside the table get 403, roles inside never do; a coordinator of another site
gets 404 on every record of the first site, the site's own coordinator does not.
"""

import io
import re

import pytest

from tests.builders import active_site, days_ago, dose, enrol, world
from tests.factories import PASSWORD, login_page, make_user

A, L, C, M = "admin", "consortium_lead", "coordinator", "safety_monitor"
ROLE_CODES = {"A": A, "L": L, "C": C, "M": M}

# endpoint -> roles admitted (A admin, L consortium lead, C coordinator, M safety monitor)
MATRIX = {
    # audit: administrators and consortium leads
    "audit.audit_list": "AL",
    "audit.audit_verify": "AL",
    "audit_api.export_audit": "AL",
    "audit_api.list_audit": "AL",
    "audit_api.verify_audit": "AL",
    # accounts: everyone their own; administrators everyone's
    "auth.account": "ACLM",
    "auth.logout": "ACLM",
    "auth.user_edit": "A",
    "auth.user_list": "A",
    "auth.user_new": "A",
    "auth.user_sign_out_everywhere": "A",
    "auth_api.create_user": "A",
    "auth_api.get_user": "A",
    "auth_api.list_tokens": "ACLM",
    "auth_api.list_users": "A",
    "auth_api.me": "ACLM",
    "auth_api.revoke_current_token": "ACLM",
    "auth_api.revoke_token": "ACLM",
    "auth_api.sign_out_everywhere": "A",
    "auth_api.update_user": "A",
    "dashboard.home": "ACLM",
    "dashboard.safety_workspace": "M",
    # trial design: managers; reading: everyone
    "enrollment.trial_list": "ACLM",
    "enrollment.trial_detail": "ACLM",
    "enrollment.cohort_board": "ACLM",
    "enrollment.trial_new": "AL",
    "enrollment.trial_status": "AL",
    "enrollment.cohort_new": "AL",
    "enrollment.criterion_new": "AL",
    "enrollment.consent_version_new": "AL",
    "enrollment.visit_definition_new": "AL",
    "enrollment.design_item_edit": "AL",
    "enrollment.design_item_remove": "AL",
    "enrollment.consent_site_approval_new": "AL",
    "enrollment.amendment_list": "ACLM",
    "enrollment.amendment_new": "AL",
    "enrollment_api.list_trials": "ACLM",
    "enrollment_api.get_trial": "ACLM",
    "enrollment_api.create_trial": "AL",
    "enrollment_api.update_trial": "AL",
    "enrollment_api.add_cohort": "AL",
    "enrollment_api.add_criterion": "AL",
    "enrollment_api.add_consent_version": "AL",
    "enrollment_api.add_consent_site_approval": "AL",
    "enrollment_api.add_visit_definition": "AL",
    "enrollment_api.update_cohort": "AL",
    "enrollment_api.update_criterion": "AL",
    "enrollment_api.update_visit_definition": "AL",
    "enrollment_api.remove_cohort": "AL",
    "enrollment_api.remove_criterion": "AL",
    "enrollment_api.remove_visit_definition": "AL",
    "enrollment_api.list_amendments": "ACLM",
    "enrollment_api.record_amendment": "AL",
    "enrollment_api.escalation_readiness": "ACLM",
    # safety oversight: safety monitors decide; everyone reads
    "enrollment.safety_review_new": "M",
    "enrollment.trial_pause": "M",
    "enrollment.trial_resume": "M",
    "enrollment_api.list_safety_reviews": "ACLM",
    "enrollment_api.record_safety_review": "M",
    "enrollment_api.list_pauses": "ACLM",
    "enrollment_api.pause_trial": "M",
    "enrollment_api.resume_trial": "M",
    # screening log: coordinators enter; coordinators, admins and leads read
    "enrollment.screening_list": "ACL",
    "enrollment.screening_detail": "ACL",
    "enrollment.screening_export": "ACL",
    "enrollment.screening_new": "C",
    "enrollment.screening_outcome": "C",
    "enrollment.screening_consent": "C",
    "enrollment_api.list_screenings": "ACL",
    "enrollment_api.get_screening": "ACL",
    "enrollment_api.export_screenings": "ACL",
    "enrollment_api.create_screening": "C",
    "enrollment_api.update_screening": "C",
    # subjects: coordinators do site work; everyone reads (coordinators their sites)
    "enrollment.subject_list": "ACLM",
    "enrollment.subject_detail": "ACLM",
    "enrollment.subject_new": "C",
    "enrollment.subject_consent": "C",
    "enrollment.subject_dosing": "C",
    "enrollment.visit_record": "C",
    "enrollment.subject_withdraw": "C",
    "enrollment.subject_end": "C",
    "enrollment.subject_reinstate": "C",
    "enrollment.visits_due": "AC",
    "enrollment_api.list_subjects": "ACLM",
    "enrollment_api.get_subject": "ACLM",
    "enrollment_api.list_consents": "ACLM",
    "enrollment_api.list_visits": "ACLM",
    "enrollment_api.list_deviations": "ACLM",
    "enrollment_api.enrol": "C",
    "enrollment_api.record_consent": "C",
    "enrollment_api.record_dosing": "C",
    "enrollment_api.record_visit": "C",
    "enrollment_api.withdraw": "C",
    "enrollment_api.end_participation": "C",
    "enrollment_api.reinstate": "C",
    "enrollment_api.visits_due": "AC",
    # partners and sites: managers; everyone reads (coordinators their sites)
    "partners.partner_list": "ACLM",
    "partners.partner_detail": "ACLM",
    "partners.partner_export": "ACLM",
    "partners.partner_new": "AL",
    "partners.partner_edit": "AL",
    "partners.site_list": "ACLM",
    "partners.site_detail": "ACLM",
    "partners.site_new": "AL",
    "partners.site_edit": "AL",
    "partners.site_activate": "AL",
    "partners.site_suspend": "AL",
    "partners.site_close": "AL",
    "partners.approval_new": "AL",
    "partners.approval_withdraw": "AL",
    "partners.approval_document": "ACLM",
    "partners_api.list_partners": "ACLM",
    "partners_api.get_partner": "ACLM",
    "partners_api.export_partners": "ACLM",
    "partners_api.create_partner": "AL",
    "partners_api.update_partner": "AL",
    "partners_api.list_sites": "ACLM",
    "partners_api.get_site": "ACLM",
    "partners_api.create_site": "AL",
    "partners_api.update_site": "AL",
    "partners_api.activate_site": "AL",
    "partners_api.suspend_site": "AL",
    "partners_api.close_site": "AL",
    "partners_api.list_approvals": "ACLM",
    "partners_api.add_approval": "AL",
    "partners_api.update_approval": "AL",
    "partners_api.upload_document": "AL",
    "partners_api.download_document": "ACLM",
    "partners_api.site_status_history": "ACLM",
    # safety: coordinators record; safety monitors review and submit; everyone reads
    "safety_api.list_adverse_events": "ACLM",
    "safety_api.get_adverse_event": "ACLM",
    "safety_api.list_versions": "ACLM",
    "safety_api.list_reviews": "ACLM",
    "safety_api.record_adverse_event": "C",
    "safety_api.update_adverse_event": "C",
    "safety_api.review_adverse_event": "M",
    "safety_api.list_labs": "ACLM",
    "safety_api.grade_preview": "ACLM",
    "safety_api.record_lab": "C",
    "safety_api.list_expedited_reports": "ACLM",
    "safety_api.submit_expedited_report": "M",
    "safety_api.list_expedited_rules": "ACLM",
    "safety_api.update_expedited_rule": "A",
    "safety_api.list_stopping_rules": "ACLM",
    "safety_api.save_stopping_rule": "AL",
    "safety_api.list_firings": "ACLM",
    "safety_api.list_work_items": "ACLM",
    "safety_api.list_notifications": "ACLM",
    "safety_api.read_notification": "ACLM",
    "safety_api.search_meddra": "ACLM",
    "safety_api.import_meddra": "A",
    # safety pages: the same operations as the API, the same roles
    "safety.ae_list": "ACLM",
    "safety.ae_export": "ACLM",
    "safety.ae_detail": "ACLM",
    "safety.ae_new": "C",
    "safety.ae_follow_up": "C",
    "safety.ae_review": "M",
    "safety.meddra_search": "ACLM",
    "safety.lab_new": "C",
    "safety.lab_grade": "ACLM",
    "safety.subject_labs": "ACLM",
    "safety.report_list": "ACLM",
    "safety.report_submit": "M",
    "safety.trial_rules": "ACLM",
    "safety.stopping_rule_save": "AL",
    "safety.expedited_rule_update": "A",
    "safety.task_list": "ACLM",
    "safety.notification_list": "ACLM",
    "safety.notification_read": "ACLM",
    "safety.notification_read_all": "ACLM",
    "safety.meddra_import": "A",
    # feasibility: managers plan milestones and set criteria; everyone reads (coordinators
    # their own sites' numbers)
    "milestones.feasibility_index": "ACLM",
    "milestones.feasibility": "ACLM",
    "milestones.consort": "ACLM",
    "milestones.milestone_timeline": "ACLM",
    "milestones.milestone_new": "AL",
    "milestones.milestone_edit": "AL",
    "milestones.criterion_new": "AL",
    "milestones.criterion_edit": "AL",
    "milestones.public_summary": "AL",
    "milestones_api.list_milestones": "ACLM",
    "milestones_api.create_milestone": "AL",
    "milestones_api.update_milestone": "AL",
    "milestones_api.list_criteria": "ACLM",
    "milestones_api.create_criterion": "AL",
    "milestones_api.update_criterion": "AL",
    "milestones_api.feasibility": "ACLM",
    "milestones_api.consort": "ACLM",
    # reports: trial-wide for leads, safety monitors and admins; coordinators their sites'
    # one-site reports (generate and read); schedules by managers, subscriptions by leads
    # and safety monitors
    "reports.report_list": "ACLM",
    "reports.report_generate": "ACLM",
    "reports.report_pdf": "ACLM",
    "reports.schedule_new": "AL",
    "reports.schedule_edit": "AL",
    "reports.schedule_subscribe": "LM",
    "reports.schedule_unsubscribe": "LM",
    "reports_api.list_reports": "ACLM",
    "reports_api.generate_report": "ACLM",
    "reports_api.get_report": "ACLM",
    "reports_api.download_report": "ACLM",
    "reports_api.list_schedules": "ALM",
    "reports_api.create_schedule": "AL",
    "reports_api.update_schedule": "AL",
    "reports_api.subscribe": "LM",
    "reports_api.unsubscribe": "LM",
    # the safety dashboard: everyone reads (coordinators their sites)
    "safety_api.safety_summary": "ACLM",
    "safety_api.safety_signals": "ACLM",
    "safety_dashboard.index": "ACLM",
    "safety_dashboard.dashboard": "ACLM",
    "safety_dashboard.events": "ACLM",
    "safety_dashboard.events_export": "ACLM",
    "safety_dashboard.clocks": "ACLM",
    "safety_dashboard.clocks_export": "ACLM",
    "safety_dashboard.labs": "ACLM",
    "safety_dashboard.labs_export": "ACLM",
    "safety_dashboard.signals": "ACLM",
    "safety_dashboard.subject_profile": "ACLM",
    # efficacy: managers define endpoints, coordinators enter measurements; everyone reads
    "efficacy.index": "ACLM",
    "efficacy.trial_efficacy": "ACLM",
    "efficacy.endpoint_new": "AL",
    "efficacy.efficacy_export": "ACLM",
    "efficacy.subject_efficacy": "ACLM",
    "efficacy.measurement_new": "C",
    "efficacy.measurement_edit": "C",
    "efficacy_api.list_endpoints": "ACLM",
    "efficacy_api.create_endpoint": "AL",
    "efficacy_api.list_measurements": "ACLM",
    "efficacy_api.get_measurement": "ACLM",
    "efficacy_api.record_measurement": "C",
    "efficacy_api.update_measurement": "C",
    "efficacy_api.efficacy_summary": "ACLM",
    # data out: the dictionary holds no trial data (everyone); exports leads and admins only
    "exports.data_dictionary": "ACLM",
    "exports_api.data_dictionary": "ACLM",
    "exports_api.export_analysis": "AL",
    "exports_api.export_odm": "AL",
    "exports_api.export_fhir": "AL",
    "exports.export_page": "AL",
    "exports.export_download": "AL",
}
PUBLIC_OR_BUILT_IN = {
    "static",
    "api-docs.openapi_json",
    "auth.login",
    "auth_api.create_token",
    "dashboard.health",
    "dashboard.api_docs",
    "milestones.public_trial",
    "milestones_api.public_trial",
}
# Ending one's own session or token: called last, so the rest of the sweep keeps its login.
LAST = ("auth.logout", "auth_api.revoke_current_token")
# URL parameters that name a record of site S01 (a coordinator of S02 must get 404).
SITE_SCOPED = {
    "site_id",
    "code",
    "screening_id",
    "visit_id",
    "approval_id",
    "ae_id",
    "report_id",
    "archive_id",
    "measurement_id",
}


@pytest.fixture()
def scene(app, api):
    w = world(api)
    lead, coord = w["lead"], w["coord"]
    subject = enrol(coord, w["trial"], w["site"])
    assert dose(coord, subject, days_ago(100)).status_code == 201
    other_site = active_site(lead, "S02")
    visit = coord.get(f"/subjects/{subject['code']}/visits").json[0]
    approval = lead.get(f"/sites/{w['site']['id']}/approvals").json[0]
    upload = lead.client.post(
        f"/api/v1/approvals/{approval['id']}/document",
        data={"file": (io.BytesIO(b"%PDF-1.4 letter"), "irb.pdf")},
        headers={"Authorization": f"Bearer {lead.token}"},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 201
    spare = make_user(app, "coordinator")
    spare_token = api.as_user(spare)
    token_id = spare_token.get("/auth/tokens").json[0]["id"]
    trial = lead.get(f"/trials/{w['trial']['id']}").json
    ae = coord.post(
        "/adverse-events",
        json={
            "subject_code": subject["code"],
            "term": "Hepatitis",
            "soc": "Hepatobiliary disorders",
            "onset_date": days_ago(20).isoformat(),
            "grade": 2,
            "seriousness_criteria": ["hospitalisation"],
            "causality": "unlikely",
            "expected": True,
            "site_awareness_at": f"{days_ago(19).isoformat()}T09:00:00+00:00",
        },
    ).json
    rule = lead.get(f"/trials/{trial['id']}/expedited-rules").json[0]
    milestone = lead.post(
        f"/trials/{trial['id']}/milestones",
        json={"name": "DSMB meeting", "planned_on": days_ago(10).isoformat()},
    ).json
    criterion = lead.post(
        f"/trials/{trial['id']}/progression-criteria",
        json={"metric": "retention", "target": 0.8},
    ).json
    site_report = coord.post(
        "/reports",
        json={"kind": "site_enrollment", "trial_id": trial["id"], "site_id": w["site"]["id"]},
    ).json
    schedule = lead.post(
        "/report-schedules",
        json={"kind": "dsmb_safety", "trial_id": trial["id"], "cron": "0 6 1 * *"},
    ).json
    endpoint = lead.post(
        f"/trials/{trial['id']}/endpoints",
        json={"code": "FIX", "name": "Factor IX", "unit": "IU/dL", "direction": "higher_is_better"},
    ).json
    measurement = coord.post(
        "/efficacy-measurements",
        json={
            "subject_code": subject["code"],
            "endpoint_id": endpoint["id"],
            "value": 1.2,
            "measured_on": days_ago(101).isoformat(),
            "baseline": True,
        },
    ).json
    values = {
        "trial_id": trial["id"],
        "site_id": w["site"]["id"],
        "partner_id": w["site"]["partner_id"],
        "approval_id": approval["id"],
        "user_id": spare["id"],
        "token_id": token_id,
        "code": subject["code"],
        "screening_id": subject["screening_id"],
        "visit_id": visit["id"],
        "version_id": trial["consent_versions"][0]["id"],
        "item_id": trial["cohorts"][-1]["id"],
        "ae_id": ae["id"],
        "report_id": ae["expedited_reports"][0]["id"],
        "rule_id": rule["id"],
        "measurement_id": measurement["id"],
        "notification_id": 1,
        "milestone_id": milestone["id"],
        "criterion_id": criterion["id"],
        "archive_id": site_report["id"],
        "schedule_id": schedule["id"],
        "kind": "cohort",
    }
    actors = {
        A: api.as_role(A),
        L: lead,
        C: coord,
        M: api.as_role(M),
    }
    return {"values": values, "actors": actors, "other_site": other_site, "api": api}


def _calls(app):
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_OR_BUILT_IN:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            rules.append((rule, method))
    return sorted(rules, key=lambda rm: (rm[0].endpoint in LAST, rm[0].endpoint, rm[1]))


def _url(rule, values):
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), rule.rule)


def _send(app, session, actor, rule, method, url):
    if rule.rule.startswith("/api/"):
        kwargs = {"headers": {"Authorization": f"Bearer {actor.token}"}}
        if method in ("POST", "PATCH", "PUT"):
            kwargs["json"] = {}
        return actor.client.open(url, method=method, **kwargs)
    return session.open(url, method=method, data={} if method == "POST" else None)


def test_every_route_is_in_the_matrix_with_its_declared_roles(app):
    declared = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_OR_BUILT_IN:
            continue
        roles = getattr(app.view_functions[rule.endpoint], "_roles", None)
        assert roles, f"{rule} declares no roles"
        declared[rule.endpoint] = {code for code, role in ROLE_CODES.items() if role in roles}
    assert set(declared) == set(MATRIX), (
        f"not in the matrix: {sorted(set(declared) - set(MATRIX))}; "
        f"gone: {sorted(set(MATRIX) - set(declared))}"
    )
    drift = {e: ("".join(sorted(r)), MATRIX[e]) for e, r in declared.items() if set(MATRIX[e]) != r}
    assert drift == {}


def test_each_role_gets_exactly_the_routes_of_its_row(app, scene):
    values, actors = scene["values"], scene["actors"]
    sessions = {}
    for role, actor in actors.items():
        sessions[role] = app.test_client()
        assert login_page(sessions[role], actor.user["email"], PASSWORD).status_code == 302
    wrong = []
    calls = _calls(app)
    for rule, method in calls:
        url = _url(rule, values)
        allowed = {ROLE_CODES[c] for c in MATRIX[rule.endpoint]}
        for role, actor in actors.items():
            resp = _send(app, sessions[role], actor, rule, method, url)
            status = resp.status_code
            if role in allowed and (status in (401, 403) or status >= 500):
                wrong.append((method, rule.rule, role, status, "should be admitted"))
            if role not in allowed and status != 403:
                wrong.append((method, rule.rule, role, status, "should be 403"))
    assert wrong == [], f"{len(wrong)} of {len(calls) * len(actors)} calls wrong: {wrong[:20]}"


def test_coordinator_of_another_site_gets_404_on_every_record_of_this_site(app, scene):
    values = scene["values"]
    stranger = scene["api"].as_role(C, site_ids=[scene["other_site"]["id"]])
    session = app.test_client()
    assert login_page(session, stranger.user["email"], PASSWORD).status_code == 302
    own = scene["actors"][C]
    own_session = app.test_client()
    assert login_page(own_session, own.user["email"], PASSWORD).status_code == 302
    wrong, checked = [], 0
    for rule, method in _calls(app):
        if "C" not in MATRIX[rule.endpoint] or not SITE_SCOPED & set(rule.arguments):
            continue
        url = _url(rule, values)
        checked += 1
        other = _send(app, session, stranger, rule, method, url)
        if other.status_code == 422 and method != "GET":
            # the body was refused before any record was looked up: the same answer as the
            # site's own coordinator gets, so nothing about the record leaks
            mine = _send(app, own_session, own, rule, method, url)
            if (mine.status_code, mine.get_json()) != (422, other.get_json()):
                wrong.append((method, rule.rule, "other site 422 differs", mine.status_code))
        elif other.status_code != 404:
            wrong.append((method, rule.rule, "other site", other.status_code))
        if method == "GET":
            mine = _send(app, own_session, own, rule, method, url)
            if mine.status_code in (403, 404):
                wrong.append((method, rule.rule, "own site", mine.status_code))
    assert checked >= 20
    assert wrong == []
