"""`make bench`: request timings through the whole stack, as ratios to a baseline
(GET /health) measured in the same run, on a fresh SQLite database with the demo trial
and `--subjects` extra enrolled subjects. Not part of the test suite."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from flask_migrate import upgrade

from trialmgr import ROOT, create_app
from trialmgr.auth.models import SystemActor
from trialmgr.db import today
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.extensions import db


def _seed(app: Any, extra: int) -> None:
    from trialmgr.demo import accounts, consortium, trial

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        accounts.seed()
        sites = consortium.seed(today())
        consortium.assign_coordinator("coordinator@example.org", [sites["IT01"].id])
        consortium.assign_coordinator("coordinator.fr@example.org", [sites["FR01"].id])
        gt = trial.seed(sites, today())
        actor = SystemActor(email="system:bench")
        cohort = trials_service.add_cohort(
            actor,
            gt,
            {
                "label": "BENCH",
                "dose": "1e12",
                "dose_unit": "vg/kg",
                "capacity": max(extra, 1),
                "sequence": 99,
            },
        )
        version = consent_service.current_consent_version(gt, today())
        assert version is not None
        for _ in range(extra):
            s = screening_service.create_screening(
                actor,
                {
                    "trial_id": gt.id,
                    "site_id": sites["IT01"].id,
                    "screened_on": today(),
                    "orphacode": 98879,
                    "birth_year": 2014,
                    "sex": "M",
                    "answers": {"I1": True, "I2": True, "E1": False, "E2": False},
                    "outcome": "eligible",
                },
                today(),
            )
            subjects_service.enrol(
                actor,
                {
                    "screening_id": s.id,
                    "cohort_id": cohort.id,
                    "consent_version_id": version.id,
                    "consented_on": today(),
                },
                today(),
            )
        db.session.commit()


def _time(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--subjects", type=int, default=100, help="at most 100 (cohort capacity cap)"
    )
    parser.add_argument("--repeat", type=int, default=30)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRIALMGR_INSTANCE"] = tmp
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db",
                "RATELIMIT_ENABLED": False,
                "WTF_CSRF_ENABLED": False,
            }
        )
        _seed(app, opts.subjects)
        client = app.test_client()

        def token(email: str) -> dict[str, str]:
            resp = client.post(
                "/api/v1/auth/tokens", json={"email": email, "password": "demo-password-2026"}
            )
            return {"Authorization": f"Bearer {resp.json['token']}"}

        lead, coord = token("lead@example.org"), token("coordinator@example.org")
        client.post(
            "/login", data={"email": "coordinator@example.org", "password": "demo-password-2026"}
        )
        screen = {
            "trial_id": 1,
            "site_id": 1,
            "screened_on": today().isoformat(),
            "orphacode": 98879,
            "birth_year": 2014,
            "sex": "M",
        }
        cases: list[tuple[str, Callable[[], Any]]] = [
            ("GET /health (baseline)", lambda: client.get("/health")),
            (
                f"GET /api/v1/subjects ({opts.subjects}+ subjects, page of 100)",
                lambda: client.get("/api/v1/subjects", headers=coord),
            ),
            ("GET /api/v1/trials/1", lambda: client.get("/api/v1/trials/1", headers=lead)),
            (
                "POST /api/v1/screenings (audited write)",
                lambda: client.post("/api/v1/screenings", json=screen, headers=coord),
            ),
            ("GET /visits/due (page)", lambda: client.get("/visits/due")),
            ("GET /trials/1/cohorts (cohort board page)", lambda: client.get("/trials/1/cohorts")),
            (
                "GET /api/v1/audit/verify (whole chain)",
                lambda: client.get("/api/v1/audit/verify", headers=lead),
            ),
        ]
        results = [(name, _time(fn, opts.repeat)) for name, fn in cases]
        base = results[0][1]
        print(f"{'case':<58} {'median ms':>10} {'x baseline':>11}")
        for name, seconds in results:
            print(f"{name:<58} {seconds * 1000:>10.2f} {seconds / base:>11.1f}")
        with app.app_context():
            from trialmgr.audit.models import AuditEvent

            rows = db.session.query(AuditEvent).count()
        print(f"(audit chain: {rows} rows)")


if __name__ == "__main__":
    main()
