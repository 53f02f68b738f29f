"""Command line: users create, demo seed."""

import sqlalchemy as sa

from trialmgr.auth.models import User
from trialmgr.extensions import db


def test_users_create_with_password_on_stdin(app, runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "root@example.org",
            "--name",
            "Root",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="a-long-enough-password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.execute(sa.select(User)).scalar_one()
        assert (user.email, user.role) == ("root@example.org", "admin")
        assert user.password_hash.startswith("$argon2id$")


def test_users_create_refuses_a_short_password(app, runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "r@example.org",
            "--name",
            "R",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="short\n",
    )
    assert result.exit_code != 0
    assert "12 characters" in result.output
    with app.app_context():
        assert db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one() == 0


def test_demo_seed_creates_one_user_per_role_and_prints_logins(app, runner):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    for email in (
        "admin@example.org",
        "lead@example.org",
        "monitor@example.org",
        "coordinator@example.org",
    ):
        assert email in result.output
    with app.app_context():
        roles = set(db.session.execute(sa.select(User.role)).scalars())
    assert roles == {"admin", "consortium_lead", "safety_monitor", "coordinator"}
    again = runner.invoke(args=["demo", "seed", "--if-empty"])
    assert again.exit_code == 0 and "not seeding" in again.output
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_demo_seed_builds_the_consortium(app, runner):
    from trialmgr.partners.models import Partner, Site

    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        kinds = set(db.session.execute(sa.select(Partner.kind)).scalars())
        sites = {s.code: s for s in db.session.execute(sa.select(Site)).scalars()}
        assert {
            "sponsor",
            "academic",
            "manufacturer",
            "laboratory",
            "patient_organisation",
        } <= kinds
        assert {s.country for s in sites.values()} == {"IT", "FR", "DE"}
        assert sorted(s.status for s in sites.values()) == ["active", "active", "pending"]
        from trialmgr.db import today
        from trialmgr.partners.services.approvals import missing_approvals

        assert missing_approvals(sites["DE01"], today()) == ["ibc"]
        coordinator = db.session.execute(
            sa.select(User).where(User.email == "coordinator@example.org")
        ).scalar_one()
        assert coordinator.site_ids == [sites["IT01"].id]


def test_demo_seed_builds_a_trial_at_several_stages(app, runner):
    from trialmgr.db import today, utcnow
    from trialmgr.enrollment.models import Screening, Subject, Trial
    from trialmgr.enrollment.services import dosing as dosing_service

    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        trial = db.session.execute(sa.select(Trial).where(Trial.code == "GT-01")).scalar_one()
        assert (trial.status, trial.vector_type, len(trial.cohorts)) == ("open", "aav", 3)
        assert len(trial.visit_definitions) >= 5
        outcomes = [s.outcome for s in db.session.execute(sa.select(Screening)).scalars()]
        assert outcomes.count("screen_failed") >= 2
        subjects = (
            db.session.execute(sa.select(Subject).where(Subject.trial_id == trial.id))
            .scalars()
            .all()
        )
        assert sum(s.reconsent_due for s in subjects) == 1
        assert {s.status for s in subjects} >= {"enrolled", "completed"}
        board = dosing_service.cohort_board(trial, utcnow())
        waiting = board[1]["next_allowed"]
        assert waiting is not None and 0 < (waiting.date() - today()).days <= 5


def test_demo_seed_shows_issue_8_and_safety_states(app, runner):
    """A renewal in force, a consent version approved at one site only, a trial closed to
    enrolment in long-term follow-up, and a safety history with an open SUSAR clock."""
    from trialmgr.clock import utcnow
    from trialmgr.enrollment.models import Subject, Trial, Visit
    from trialmgr.partners.models import Site
    from trialmgr.partners.services.approvals import in_force
    from trialmgr.safety.models import AdverseEvent, ExpeditedReport, WorkItem

    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        rome = db.session.execute(sa.select(Site).where(Site.code == "IT01")).scalar_one()
        irbs = [a for a in rome.approvals if a.kind == "irb"]
        assert len(irbs) == 2 and in_force(rome, "irb", utcnow().date()).reference.endswith("R1")
        gt01 = db.session.execute(sa.select(Trial).where(Trial.code == "GT-01")).scalar_one()
        v12 = next(v for v in gt01.consent_versions if v.version == "1.2")
        lyon = db.session.execute(sa.select(Site).where(Site.code == "FR01")).scalar_one()
        assert v12.approved_at(rome.id) is not None and v12.approved_at(lyon.id) is None
        gt00 = db.session.execute(sa.select(Trial).where(Trial.code == "GT-00")).scalar_one()
        assert gt00.status == "closed"
        ltfu_done = db.session.execute(
            sa.select(sa.func.count())
            .select_from(Visit)
            .join(Subject, Subject.id == Visit.subject_id)
            .where(Subject.trial_id == gt00.id, Visit.kind == "ltfu", Visit.status == "done")
        ).scalar_one()
        assert ltfu_done >= 2
        assert (
            db.session.execute(
                sa.select(sa.func.count()).select_from(AdverseEvent).where(AdverseEvent.susar)
            ).scalar_one()
            == 1
        )
        clocks = db.session.execute(sa.select(ExpeditedReport)).scalars().all()
        assert {c.authority for c in clocks if c.submitted_at} == {"sponsor", "FDA"}
        assert all(c.late is False for c in clocks if c.submitted_at)
        overdue = [
            w
            for w in db.session.execute(sa.select(WorkItem)).scalars()
            if w.status == "open" and w.due_on and w.due_on < utcnow().date()
        ]
        assert [w.kind for w in overdue if w.owner_role == "coordinator"] == ["follow_up_report"]
        assert gt01.status == "open"  # the demo history fires no stopping rule
