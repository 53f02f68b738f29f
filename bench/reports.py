"""`python -m bench.reports`: how long a report takes and how much memory it needs, on a
fresh SQLite database with the demo data; and a long listing built in chunks, against the
same rows as one platypus Table (`--one-table`: slow, superlinear). Not part of the tests."""

from __future__ import annotations

import argparse
import io
import os
import resource
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask_migrate import upgrade

from trialmgr import ROOT, create_app
from trialmgr.clock import utcnow
from trialmgr.extensions import db


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(label: str, work: Any, traced: bool = True) -> None:
    """Wall time of one run; then the Python heap's peak over a second run (tracemalloc
    slows reportlab many times over, so it never runs during the timed one) or, untraced,
    how far the process's peak resident memory grew."""
    rss = _maxrss_mb()
    started = time.perf_counter()
    size = work()
    elapsed = time.perf_counter() - started
    if traced:
        tracemalloc.start()
        work()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        memory = f"Python heap peak {peak / 1e6:6.1f} MB"
    else:
        memory = f"peak RSS grew {_maxrss_mb() - rss:6.1f} MB"
    print(f"{label:<42} {elapsed:7.2f} s   {memory}   {size:>9} bytes")


def _demo_reports(app: Any) -> None:
    from trialmgr.audit import services as audit
    from trialmgr.demo import accounts, consortium, safety, trial
    from trialmgr.enrollment.models import Trial
    from trialmgr.partners.models import Site
    from trialmgr.reports import builders
    from trialmgr.reports.models import REPORT_TITLES

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        accounts.seed()
        sites = consortium.seed(utcnow())
        consortium.assign_coordinator("coordinator@example.org", [sites["IT01"].id])
        consortium.assign_coordinator("coordinator.fr@example.org", [sites["FR01"].id])
        safety.seed(trial.seed(sites, utcnow().date()), utcnow())
        db.session.commit()
        gt01 = db.session.execute(sa.select(Trial).where(Trial.code == "GT-01")).scalar_one()
        rome = db.session.execute(sa.select(Site).where(Site.code == "IT01")).scalar_one()
        cut_off = utcnow().date() - timedelta(days=1)
        for kind, site in (
            ("site_enrollment", None),
            ("site_enrollment", rome),
            ("dsmb_safety", None),
            ("feasibility", None),
        ):
            db.session.expire_all()
            ctx = builders.ReportContext(
                kind=kind,
                title=REPORT_TITLES[kind],
                trial=gt01,
                site=site,
                period_start=cut_off.replace(day=1),
                cut_off=cut_off,
                generated_at=utcnow(),
                audit_head=audit.head(),
                requested_by="bench",
                template=builders.TEMPLATE_VERSIONS[kind],
            )

            def build(ctx: Any = ctx) -> int:
                out = io.BytesIO()
                builders.build(ctx, out)
                return len(out.getvalue())

            _measure(f"demo {kind} ({site.code if site else 'all sites'})", build)


def _listing(rows: int, one_table: bool) -> None:
    from reportlab.platypus import Table

    from trialmgr.reports.builders.document import NumberedCanvas, PageFrame, ReportDocument
    from trialmgr.reports.builders.layout import Column, data_table

    columns = [Column(f"Column {i}", 1 / 8) for i in range(8)]
    frame = PageFrame("BENCH", "Listing", date(2026, 1, 31), "0" * 64)

    def lines() -> Any:
        return ([f"S01-{n:06d}", *(f"v{n % 97}.{i}" for i in range(7))] for n in range(rows))

    def chunked() -> int:
        out = io.BytesIO()
        ReportDocument(out, frame).build(
            list(data_table(columns, lines())), canvasmaker=NumberedCanvas
        )
        return len(out.getvalue())

    _measure(f"{rows} rows x 8 columns, tables of 500", chunked, traced=False)
    if one_table:

        def single() -> int:
            out = io.BytesIO()
            table = Table([[c.header for c in columns], *lines()], repeatRows=1)
            ReportDocument(out, frame).build([table], canvasmaker=NumberedCanvas)
            return len(out.getvalue())

        _measure(f"{rows} rows x 8 columns, one Table", single, traced=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--one-table", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRIALMGR_INSTANCE"] = tmp
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db", "RATELIMIT_ENABLED": False}
        )
        _demo_reports(app)
        _listing(args.rows, args.one_table)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak resident memory {maxrss:.0f} MB")


if __name__ == "__main__":
    main()
