"""The look of every report: fonts, styles, the page frame (running header with the trial
and the data cut-off, footer with the audit-chain head and "page x of y"), and tables that
stay fast and readable however long they get.

Text typed by users (terms, reasons, references, names) is escaped before it reaches a
Paragraph, whose markup would otherwise read `<b>` as bold and choke on a lone `&`: it
prints as typed. Short table cells are drawn as plain strings, which reportlab never
parses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.tables import CellStyle

PAGE = A4
MARGIN_X = 16 * mm
MARGIN_TOP = 22 * mm
MARGIN_BOTTOM = 20 * mm
FRAME_WIDTH = PAGE[0] - 2 * MARGIN_X
# One platypus Table of n rows costs superlinear time (10,000 rows ~4 s, 100,000 ~320 s with
# reportlab 5.1); the same rows as tables of 500 take linear time.
CHUNK_ROWS = 500
# The widest glyph of DejaVu Sans (1.74 em) and of Vera, in em.
MAX_GLYPH_EM = 1.75

INK = colors.HexColor("#1F2933")
MUTED = colors.HexColor("#5F6B7A")
RULE = colors.HexColor("#C8CED6")
HEAD_BG = colors.HexColor("#E4EAF1")
ZEBRA = colors.HexColor("#F6F8FA")
ACCENT = colors.HexColor("#1D4E89")
NOTE_BG = colors.HexColor("#FFF7E0")
NOTE_RULE = colors.HexColor("#E0B84C")

# DejaVu covers far more of Unicode than the PDF standard fonts (Latin-1 only); reportlab's
# own Vera is the fallback where DejaVu is not installed.
_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts/dejavu"),
)
_REPORTLAB_FONTS = Path(reportlab.__file__ or ".").parent / "fonts"
FONT = "Report"
FONT_BOLD = "Report-Bold"
FONT_ITALIC = "Report-Italic"
FONT_MONO = "Report-Mono"


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    faces = None
    for folder in _FONT_DIRS:
        names = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf")
        if all((folder / n).exists() for n in names):
            faces = [folder / n for n in names] + [folder / "DejaVuSansMono.ttf"]
            break
    if faces is None:
        faces = [_REPORTLAB_FONTS / n for n in ("Vera.ttf", "VeraBd.ttf", "VeraIt.ttf")]
        faces.append(faces[0])
    for name, path in zip((FONT, FONT_BOLD, FONT_ITALIC, FONT_MONO), faces, strict=True):
        if path.exists():
            pdfmetrics.registerFont(TTFont(name, str(path)))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic=FONT_ITALIC, boldItalic=FONT_BOLD
    )


_register_fonts()


def _style(name: str, **kw: Any) -> ParagraphStyle:
    base = {"fontName": FONT, "fontSize": 9, "leading": 12.5, "textColor": INK}
    return ParagraphStyle(name, **{**base, **kw})


STYLES = {
    "title": _style("title", fontName=FONT_BOLD, fontSize=20, leading=25, textColor=ACCENT),
    "subtitle": _style("subtitle", fontSize=12, leading=16, textColor=MUTED),
    "h1": _style(
        "h1",
        fontName=FONT_BOLD,
        fontSize=14,
        leading=18,
        spaceBefore=6,
        spaceAfter=6,
        keepWithNext=1,
    ),
    "h2": _style(
        "h2",
        fontName=FONT_BOLD,
        fontSize=11,
        leading=14,
        spaceBefore=10,
        spaceAfter=4,
        keepWithNext=1,
    ),
    "body": _style("body", spaceAfter=5),
    "small": _style("small", fontSize=7.5, leading=10, textColor=MUTED),
    "cell": _style("cell", fontSize=8, leading=10, alignment=TA_LEFT),
    "head": _style("head", fontName=FONT_BOLD, fontSize=8, leading=10, splitLongWords=0),
    "key": _style("key", fontName=FONT_BOLD, fontSize=8, leading=10),
    "note": _style("note", fontSize=8.5, leading=11.5),
}


def esc(value: Any) -> str:
    """User text made safe for a Paragraph: markup characters escaped, line breaks kept."""
    return escape("" if value is None else str(value)).replace("\n", "<br/>")


def para(text: Any, style: str = "body") -> Paragraph:
    """A paragraph of plain (user) text, printed exactly as typed."""
    return Paragraph(esc(text), STYLES[style])


def rich(markup: str, style: str = "body") -> Paragraph:
    """A paragraph of trusted markup written here; user values go in through `esc`."""
    return Paragraph(markup, STYLES[style])


def fmt_date(value: date | None) -> str:
    return value.isoformat() if value else "—"


def fmt_time(value: datetime | None, zone: bool = True) -> str:
    """An instant in UTC (`zone=False` where the column header says UTC)."""
    if value is None:
        return "—"
    return f"{value:%Y-%m-%d %H:%M}{' UTC' if zone else ''}"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "—"


class SectionTitle(Paragraph):
    """A section heading; the document bookmarks it (the PDF viewer's outline)."""

    def __init__(self, number: int, title: str, key: str) -> None:
        super().__init__(f"{number}. {esc(title)}", STYLES["h1"])
        self.outline_title = f"{number}. {title}"
        self.key = key


def note(text: str, markup: bool = False) -> Table:
    """A framed note (what is pending, how to read a number)."""
    body = Paragraph(text if markup else esc(text), STYLES["note"])
    box = Table([[body]], colWidths=[FRAME_WIDTH])
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), NOTE_BG),
                ("BOX", (0, 0), (-1, -1), 0.6, NOTE_RULE),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return box


def key_values(rows: Sequence[tuple[str, Any]], key_width: float = 0.3) -> Table:
    """Label / value pairs (the cover, a site's particulars); values are user text."""
    data = [[Paragraph(esc(k), STYLES["key"]), Paragraph(esc(v), STYLES["cell"])] for k, v in rows]
    widths = [FRAME_WIDTH * key_width, FRAME_WIDTH * (1 - key_width)]
    table = Table(data, colWidths=widths, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (0, -1), FONT_BOLD),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


@dataclass(frozen=True)
class Column:
    """A table column: header, share of the frame width, wrapped (user text that is often
    long, always an escaped Paragraph) or a plain string (wrapped as a Paragraph only when
    it does not fit: cheaper for the many short ones), right-aligned (numbers)."""

    header: str
    width: float
    wrap: bool = False
    right: bool = False


LIGHT_COLOURS = {"green": "#2E7D32", "amber": "#B26A00", "red": "#C62828"}
LIGHT_STYLE = _style("light", fontName=FONT_BOLD, fontSize=8, leading=10)


@dataclass(frozen=True)
class LightCell:
    """A traffic light in a table cell: its word, in its colour (None: no data yet)."""

    light: str | None

    def flowable(self) -> Paragraph:
        if self.light is None:
            return Paragraph("no data yet", STYLES["cell"])
        colour = LIGHT_COLOURS[self.light]
        return Paragraph(f"<font color='{colour}'>● {self.light.upper()}</font>", LIGHT_STYLE)


def _cell(value: Any, column: Column) -> Any:
    if isinstance(value, LightCell):
        return value.flowable()
    if value is None or value == "":
        return "—"
    if column.wrap:
        return Paragraph(esc(value), STYLES["cell"])
    text = str(value)
    # A plain cell does not wrap; text too wide for its column is wrapped instead. No glyph
    # of the report's fonts is wider than MAX_GLYPH_EM, so short text needs no measuring.
    room = FRAME_WIDTH * column.width - 8
    if "\n" in text:
        return Paragraph(esc(text), STYLES["cell"])
    if len(text) * 8 * MAX_GLYPH_EM > room and pdfmetrics.stringWidth(text, FONT, 8) > room:
        return Paragraph(esc(text), STYLES["cell"])
    return text


def _header(column: Column) -> Any:
    if pdfmetrics.stringWidth(column.header, FONT_BOLD, 8) > FRAME_WIDTH * column.width - 8:
        style = STYLES["head"]
        if column.right:
            style = ParagraphStyle("head-right", parent=style, alignment=TA_RIGHT)
        return Paragraph(esc(column.header), style)
    return column.header


def _cell_style(name: str, font: str, right: bool) -> CellStyle:
    style = CellStyle(name)
    style.fontname, style.fontsize, style.leading, style.color = font, 8, 10, INK
    style.valign, style.alignment = "TOP", "RIGHT" if right else "LEFT"
    style.topPadding = style.bottomPadding = 2.5
    style.leftPadding = style.rightPadding = 4
    return style


# The cells' font, size, colour, padding and alignment, one shared style per kind of cell:
# the same as TableStyle commands over every cell would set, without a style object per
# cell and a command applied to each (a long listing has hundreds of thousands of cells;
# reportlab then spent about a fifth of the DSMB report's time setting cell styles).
_CELL_STYLES = {
    (head, right): _cell_style(f"{'head' if head else 'cell'}-{right}", font, right)
    for head, font in ((True, FONT_BOLD), (False, FONT))
    for right in (False, True)
}


def _table_style(rows: int) -> TableStyle:
    """What is not a cell's own style: the header's background and rule, the row rules and
    the zebra stripes."""
    commands: list[Any] = [
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
    ]
    if rows > 1:
        commands.append(("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]))
    return TableStyle(commands)


def data_table(
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    empty: str = "None.",
    chunk: int = CHUNK_ROWS,
) -> Iterator[Flowable]:
    """Rows as tables of at most `chunk` rows, each with its header, which repeats on every
    page a table runs onto. Rows are consumed lazily: a long listing is never one Table."""
    header = [_header(column) for column in columns]
    widths = [FRAME_WIDTH * column.width for column in columns]
    batch: list[list[Any]] = []
    shown = False
    for row in rows:
        batch.append([_cell(value, column) for value, column in zip(row, columns, strict=True)])
        if len(batch) == chunk:
            yield _table(header, widths, batch, columns)
            batch, shown = [], True
    if batch:
        yield _table(header, widths, batch, columns)
    elif not shown:
        yield para(empty, "small")


def _table(header: list[Any], widths: list[float], batch: list[list[Any]], columns: Any) -> Table:
    head = [_CELL_STYLES[True, column.right] for column in columns]
    body = [_CELL_STYLES[False, column.right] for column in columns]
    table = Table(
        [header, *batch],
        colWidths=widths,
        repeatRows=1,
        hAlign="LEFT",
        cellStyles=[head, *(body for _ in batch)],
    )
    table.setStyle(_table_style(len(batch) + 1))
    return table


def heading(text: str) -> Paragraph:
    return Paragraph(esc(text), STYLES["h2"])


def block(*flowables: Flowable) -> KeepTogether:
    """Flowables kept on one page when they fit (a heading with the start of its table)."""
    return KeepTogether(list(flowables))


def gap(height: float = 6) -> Spacer:
    return Spacer(1, height)
