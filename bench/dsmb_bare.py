"""The DSMB report's baseline: a bare reportlab script, no application, that reads the same
long listings with plain SQL (dosings, reporting clocks, serious adverse events, lab draws
of grade 3 or more) and renders them into the same table layout (same fonts, column widths,
wrapped cells, 500-row tables with a repeated header) on A4. What the report adds over it:
the services' cut-off logic, the aggregates and charts, the page frame.

    python -m bench.dsmb_bare URL TRIAL_ID OUT.pdf   (prints seconds, peak RSS as JSON)
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import reportlab
import sqlalchemy as sa
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

WIDTH = A4[0] - 32 * mm
CHUNK = 500
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
FACES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
if not all((DEJAVU / f).exists() for f in FACES):
    DEJAVU = Path(reportlab.__file__ or ".").parent / "fonts"
    FACES = ("Vera.ttf", "VeraBd.ttf")
pdfmetrics.registerFont(TTFont("Bare", str(DEJAVU / FACES[0])))
pdfmetrics.registerFont(TTFont("Bare-Bold", str(DEJAVU / FACES[1])))
CELL = ParagraphStyle("cell", fontName="Bare", fontSize=8, leading=10)
STYLE = TableStyle(
    [
        ("FONTNAME", (0, 0), (-1, 0), "Bare-Bold"),
        ("FONTNAME", (0, 1), (-1, -1), "Bare"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("LEADING", (0, 0), (-1, -1), 10),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E4EAF1")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.HexColor("#1D4E89")),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#C8CED6")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F6F8FA")]),
    ]
)

# (header, width share, wrapped) per column, as in the report's sections
DOSINGS = [
    ("Cohort", 0.09, False),
    ("#", 0.05, False),
    ("Subject", 0.14, False),
    ("Site", 0.08, False),
    ("Dosed (site time)", 0.36, False),
    ("Gap since previous (days)", 0.16, False),
    ("Stagger", 0.12, False),
]
CLOCKS = [
    ("AE", 0.05, False),
    ("Subject", 0.12, False),
    ("Term", 0.19, True),
    ("To", 0.08, False),
    ("Report", 0.08, False),
    ("Due (UTC)", 0.18, False),
    ("Submitted (UTC)", 0.18, False),
    ("Timeliness", 0.12, False),
]
SAES = [
    ("AE", 0.05, False),
    ("Subject", 0.12, False),
    ("Cohort", 0.07, False),
    ("Term · SOC", 0.21, True),
    ("Onset", 0.11, False),
    ("Gr", 0.04, False),
    ("Seriousness", 0.14, True),
    ("Causality", 0.09, False),
    ("Exp.", 0.05, False),
    ("Outcome", 0.12, True),
]
LABS = [
    ("Subject", 0.13, False),
    ("Site", 0.08, False),
    ("Cohort", 0.08, False),
    ("Analyte", 0.09, False),
    ("Collected (site)", 0.14, False),
    ("Value", 0.2, False),
    ("x ULN", 0.09, False),
    ("Grade", 0.07, False),
    ("Hy's law", 0.12, False),
]


def tables(columns: Sequence[tuple[str, float, bool]], rows: Iterable[Sequence[Any]]) -> Iterator:
    header = [c[0] for c in columns]
    widths = [WIDTH * c[1] for c in columns]
    batch: list[list[Any]] = []
    for row in rows:
        batch.append(
            [
                Paragraph(escape(str(v)), CELL) if wrap else str(v)
                for v, (_, _, wrap) in zip(row, columns, strict=True)
            ]
        )
        if len(batch) == CHUNK:
            yield _table(header, widths, batch)
            batch = []
    if batch:
        yield _table(header, widths, batch)


def _table(header: list[str], widths: list[float], batch: list[list[Any]]) -> Table:
    table = Table([header, *batch], colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(STYLE)
    return table


def _dosings(conn: Any, trial_id: int) -> Iterator[tuple[Any, ...]]:
    rows = conn.execute(
        sa.text(
            "SELECT c.label, s.code, st.code, st.timezone, d.dosed_at FROM dosing d "
            "JOIN subject s ON s.id = d.subject_id JOIN site st ON st.id = s.site_id "
            "JOIN cohort c ON c.id = d.cohort_id WHERE s.trial_id = :t "
            "ORDER BY c.sequence, d.dosed_at"
        ).columns(dosed_at=sa.DateTime(timezone=True)),
        {"t": trial_id},
    )
    previous: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for label, code, site, zone, dosed_at in rows:
        gap = (dosed_at - previous[label]).total_seconds() / 86400 if label in previous else None
        counts[label] = counts.get(label, 0) + 1
        previous[label] = dosed_at
        local = dosed_at.astimezone(ZoneInfo(zone))
        yield (
            label,
            counts[label],
            code,
            site,
            f"{local:%Y-%m-%d %H:%M %Z} ({zone})",
            "sentinel" if gap is None else f"{gap:.1f}",
            "BELOW STAGGER" if gap is not None and gap < 14 else "kept",
        )


def _clocks(conn: Any, trial_id: int) -> Iterator[tuple[Any, ...]]:
    rows = conn.execute(
        sa.text(
            "SELECT r.adverse_event_id, s.code, a.term, r.authority, r.kind, r.due_at, "
            "r.submitted_at FROM expedited_report r "
            "JOIN adverse_event a ON a.id = r.adverse_event_id "
            "JOIN subject s ON s.id = a.subject_id WHERE r.trial_id = :t "
            "ORDER BY r.due_at, r.id"
        ).columns(due_at=sa.DateTime(timezone=True), submitted_at=sa.DateTime(timezone=True)),
        {"t": trial_id},
    )
    for ae_id, code, term, authority, kind, due, submitted in rows:
        timeliness = "open" if submitted is None else "late" if submitted > due else "on time"
        yield (
            ae_id,
            code,
            term,
            authority,
            kind,
            f"{due:%Y-%m-%d %H:%M}",
            f"{submitted:%Y-%m-%d %H:%M}" if submitted else "—",
            timeliness,
        )


def _saes(conn: Any, trial_id: int) -> Iterator[tuple[Any, ...]]:
    rows = conn.execute(
        sa.text(
            "SELECT a.id, s.code, c.label, COALESCE(a.pt_term, a.term), a.soc, a.onset_date, "
            "a.grade, a.seriousness_criteria, a.causality, a.expected, a.outcome, "
            "a.resolution_date FROM adverse_event a JOIN subject s ON s.id = a.subject_id "
            "JOIN cohort c ON c.id = a.cohort_id WHERE a.trial_id = :t AND a.serious = :yes "
            "ORDER BY a.onset_date, a.id"
        ).columns(seriousness_criteria=sa.JSON, expected=sa.Boolean),
        {"t": trial_id, "yes": True},
    )
    for ae_id, code, cohort, term, soc, onset, grade, criteria, causality, exp, out, end in rows:
        yield (
            ae_id,
            code,
            cohort,
            f"{term} · {soc}",
            str(onset),
            grade,
            ", ".join(c.replace("_", " ") for c in criteria or []) or "—",
            causality,
            "yes" if exp else "no",
            (out or "ongoing").replace("_", " ") + (f" {end}" if end else ""),
        )


def _labs(conn: Any, trial_id: int) -> Iterator[tuple[Any, ...]]:
    rows = conn.execute(
        sa.text(
            "SELECT s.code, st.code, c.label, l.analyte, l.collected_at, st.timezone, "
            "l.value_canonical, l.canonical_unit, l.uln_multiple, l.grade, l.hys_law "
            "FROM lab_result l JOIN subject s ON s.id = l.subject_id "
            "JOIN site st ON st.id = l.site_id JOIN cohort c ON c.id = s.cohort_id "
            "WHERE l.trial_id = :t AND l.grade >= 3 "
            "ORDER BY s.code, l.analyte, l.collected_at, l.id"
        ).columns(collected_at=sa.DateTime(timezone=True), hys_law=sa.Boolean),
        {"t": trial_id},
    )
    for code, site, cohort, analyte, at, zone, value, unit, multiple, grade, hys in rows:
        yield (
            code,
            site,
            cohort,
            analyte,
            f"{at.astimezone(ZoneInfo(zone)).date()}",
            f"{float(value):g} {unit}",
            "" if multiple is None else f"{float(multiple):.2f}",
            grade,
            "CASE" if hys else "no",
        )


def peak_rss_mb() -> float:
    """This process' peak resident memory: VmHWM (ru_maxrss would carry over the peak of
    the parent that forked it, across exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    url, trial_id, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    started, cpu = time.perf_counter(), time.process_time()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        conn = conn.execution_options(yield_per=1000)
        story: list[Any] = []
        for columns, rows in (
            (DOSINGS, _dosings(conn, trial_id)),
            (CLOCKS, _clocks(conn, trial_id)),
            (SAES, _saes(conn, trial_id)),
            (LABS, _labs(conn, trial_id)),
        ):
            story.extend(tables(columns, rows))
        SimpleDocTemplate(
            out, pagesize=A4, leftMargin=16 * mm, rightMargin=16 * mm, topMargin=22 * mm
        ).build(story)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
