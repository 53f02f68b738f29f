"""`flask demo seed` gives GT-01 a feasibility plan (issue 13): milestones done (some from
the records), one late, and progression criteria whose lights show all three colours."""

import sqlalchemy as sa

from trialmgr.auth.models import SystemActor
from trialmgr.clock import utcnow
from trialmgr.enrollment.models import Trial
from trialmgr.extensions import db
from trialmgr.milestones.services import feasibility, milestones


def test_demo_seed_plans_milestones_and_criteria_of_every_colour(app, runner):
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with app.app_context():
        gt01 = db.session.execute(sa.select(Trial).where(Trial.code == "GT-01")).scalar_one()
        reader = SystemActor(email="system:test")
        views = milestones.views_of(reader, gt01, utcnow())
        statuses = [m["status"] for m in views]
        assert statuses.count("done") >= 5 and statuses.count("late") == 1
        assert any(m["achieved_from"] == "records" for m in views)
        assert any(m["site_code"] == "FR01" for m in views)
        review = feasibility.review(reader, gt01, utcnow(), trend=False)
        assert {c["light"] for c in review["criteria"]} == {"green", "amber", "red"}
        assert review["decision"] == "stop"
        assert gt01.public_summary is True
    public = app.test_client().get("/api/v1/public/trials/GT-01")
    assert public.status_code == 200 and public.json["enrolled"] == 5
