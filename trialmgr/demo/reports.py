"""Demo reports: one report of each kind for GT-01 (and Rome's one-site enrolment report,
which its coordinator may download), and the default schedules with the lead and the
safety monitor subscribed, so a new user finds the archive filled."""

from __future__ import annotations

from datetime import datetime

from trialmgr.auth.services import find_user_by_email
from trialmgr.enrollment.models import Trial
from trialmgr.partners.models import Site
from trialmgr.reports import jobs
from trialmgr.reports.models import REPORT_KINDS
from trialmgr.reports.services import schedules
from trialmgr.reports.services.keys import request_key


def seed_schedules(trial: Trial, now: datetime) -> None:
    """The default schedules of the trial; the lead and the monitor subscribe to the DSMB
    report, the lead to the others (the caller commits)."""
    lead = find_user_by_email("lead@example.org")
    monitor = find_user_by_email("monitor@example.org")
    assert lead is not None and monitor is not None
    for kind in REPORT_KINDS:
        cron = schedules.DEFAULT_CRONS[kind][0]
        schedule = schedules.create_schedule(
            lead, {"kind": kind, "trial_id": trial.id, "cron": cron}
        )
        schedules.subscribe(lead, schedule, now)
        if kind == "dsmb_safety":
            schedules.subscribe(monitor, schedule, now)


def seed_reports(trial: Trial, rome: Site, now: datetime) -> list[int]:
    """Generate the reports (each run commits its own steps); returns their ids."""
    lead = find_user_by_email("lead@example.org")
    assert lead is not None
    # Cut off today: a report counts what was entered by the end of its cut-off day, and the
    # demo's records were all entered just now (with clinical dates in the past).
    cut_off = now.date()
    requests = [{"kind": kind, "trial_id": trial.id, "cut_off": cut_off} for kind in REPORT_KINDS]
    requests.append(
        {"kind": "site_enrollment", "trial_id": trial.id, "site_id": rome.id, "cut_off": cut_off}
    )
    made = []
    for data in requests:
        result = jobs.run_report(lead, request_key(lead, data, now), now, force=True)
        made.append(result.report_id)
    return made
