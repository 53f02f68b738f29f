"""Issue 16, target 4: the DSMB safety report at 10,000 subjects and 100,000 adverse events
(and at a tenth of that, for the growth) against a bare reportlab script that renders the
same long listings into the same table layout without the application (`dsmb_bare`), in
the same run, on the same database. Each build runs in a fresh process, which reports its
wall time (queries and rendering; not the imports) and its peak resident memory.

    python -m bench --only dsmb_report [--db postgres]
    python -m bench.dsmb ours URL TRIAL_ID OUT.pdf        (one build, as the case runs it)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import data
from bench.dsmb_bare import peak_rss_mb
from bench.server import ROOT, Database

# Sites and visits as at the large scale's density; labs two per subject and analyte.
SCALES = {
    "tenth": data.Scale(20, 1_000, 10_000, 20_000, 4_000, 1_000),
    "full": data.Scale(20, 10_000, 100_000, 200_000, 40_000, 1_000),
}
TARGET_RATIO, TARGET_RSS_MB, TARGET_GROWTH = 2.0, 500, 12.0


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _pages(path: Path) -> int:
    import pypdf

    return len(pypdf.PdfReader(str(path)).pages)


def _measure(kind: str, scale: str, tmp: Path) -> dict[str, Any]:
    """Generate the trial at `scale` in a fresh database; build the report and the bare
    listing from it in fresh processes."""
    from flask_migrate import upgrade

    from trialmgr import create_app
    from trialmgr.extensions import db

    folder = tmp / f"dsmb-{scale}"
    folder.mkdir()
    with Database(kind, folder) as database:
        os.environ["TRIALMGR_INSTANCE"] = str(folder / "instance")
        app = create_app({"SQLALCHEMY_DATABASE_URI": database.url, "SECRET_KEY": "b" * 48})
        data.SCALES[f"dsmb-{scale}"] = SCALES[scale]
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            world = data.generate(f"dsmb-{scale}")
            db.session.remove()
            db.engine.dispose()
        trial = str(world.trial_id)
        ours = _child(["bench.dsmb", "ours", database.url, trial, str(folder / "ours.pdf")])
        bare = _child(["bench.dsmb_bare", database.url, trial, str(folder / "bare.pdf")])
        ours["pages"], bare["pages"] = _pages(folder / "ours.pdf"), _pages(folder / "bare.pdf")
        return {"ours": ours, "bare": bare}


def dsmb_report(ctx: Any) -> dict[str, Any]:
    """The case for `python -m bench` (its own two databases of the harness' kind)."""
    tenth = _measure(ctx.database.kind, "tenth", ctx.tmp)
    full = _measure(ctx.database.kind, "full", ctx.tmp)
    ours, bare = full["ours"], full["bare"]
    # CPU seconds decide (wall time on a shared machine measures the neighbours too); the
    # wall times are in the note.
    ratio = ours["cpu"] / bare["cpu"]
    growth = ours["cpu"] / tenth["ours"]["cpu"]
    ok = ratio <= TARGET_RATIO and ours["rss_mb"] < TARGET_RSS_MB and growth <= TARGET_GROWTH
    note = (
        f"100k AEs: report {ours['cpu']:.1f} s CPU ({ours['seconds']:.1f} s wall), "
        f"{ours['pages']} pages, peak RSS {ours['rss_mb']:.0f} MB (< {TARGET_RSS_MB}); bare "
        f"listings {bare['cpu']:.1f} s CPU ({bare['seconds']:.1f} s wall), {bare['pages']} "
        f"pages, {bare['rss_mb']:.0f} MB. 10k AEs: report {tenth['ours']['cpu']:.1f} s CPU "
        f"({tenth['ours']['seconds']:.1f} s wall, {tenth['ours']['pages']} pages, "
        f"{tenth['ours']['rss_mb']:.0f} MB), bare {tenth['bare']['cpu']:.1f} s CPU; growth "
        f"x{growth:.1f} for x10 data (<= 12)"
    )
    return {
        "name": "DSMB report (10k subj, 100k AEs)",
        "ours": f"{ours['cpu']:.1f} s CPU",
        "baseline": f"{bare['cpu']:.1f} s CPU",
        "ratio": round(ratio, 2),
        "target": f"<= {TARGET_RATIO:g}",
        "pass": ok,
        "note": note,
        "detail": {"tenth": tenth, "full": full, "growth": round(growth, 2)},
    }


def _ours(url: str, trial_id: int, out: str) -> None:
    """One DSMB report build, cut off today at the sites (the bench data were entered just
    now)."""
    from trialmgr import create_app

    with tempfile.TemporaryDirectory() as instance:
        os.environ["TRIALMGR_INSTANCE"] = instance
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "b" * 48})
        with app.app_context():
            from trialmgr.audit import services as audit
            from trialmgr.clock import local_date, utcnow
            from trialmgr.enrollment.models import Trial
            from trialmgr.extensions import db
            from trialmgr.partners.models import Site
            from trialmgr.reports import builders
            from trialmgr.reports.models import REPORT_TITLES

            started, cpu = time.perf_counter(), time.process_time()
            trial = db.session.get(Trial, trial_id)
            assert trial is not None
            # Today on the sites' calendar: the data were entered just now, and a report counts
            # what was entered by the end of its cut-off day at each site (after 23:00 UTC
            # it is already tomorrow in Rome, and a cut-off of the UTC date holds nothing).
            now = utcnow()
            zones = db.session.execute(sa.select(Site.timezone).distinct()).scalars()
            cut_off = max(local_date(now, zone_name) for zone_name in zones)
            ctx = builders.ReportContext(
                kind="dsmb_safety",
                title=REPORT_TITLES["dsmb_safety"],
                trial=trial,
                site=None,
                period_start=cut_off.replace(day=1),
                cut_off=cut_off,
                generated_at=utcnow(),
                audit_head=audit.head(),
                requested_by="bench",
                template=builders.TEMPLATE_VERSIONS["dsmb_safety"],
            )
            with open(out, "wb") as output:
                builders.build(ctx, output)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mb": peak_rss_mb()}))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "ours":
        _ours(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    kind = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(_measure(kind, "tenth", Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
