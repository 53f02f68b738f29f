"""The page frame of every report: A4, a cover page, body pages with a running header (trial
code, report title, data cut-off), a footer with the audit-chain head on every page, and
"Page x of y" written in a second pass once the number of pages is known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate

from trialmgr.reports.builders.layout import (
    ACCENT,
    FONT,
    FONT_BOLD,
    FONT_MONO,
    FRAME_WIDTH,
    INK,
    MARGIN_BOTTOM,
    MARGIN_TOP,
    MARGIN_X,
    MUTED,
    PAGE,
    RULE,
    SectionTitle,
)


@dataclass(frozen=True)
class PageFrame:
    """What every page repeats: the header's trial and cut-off, the footer's audit head."""

    trial_code: str
    title: str
    cut_off: date
    audit_head: str


class ReportDocument(BaseDocTemplate):
    """A4, a cover page without the running header, then body pages with it; every page
    has the footer. Section titles become PDF bookmarks."""

    def __init__(self, output: IO[bytes], frame: PageFrame, **info: Any) -> None:
        super().__init__(
            output,
            pagesize=PAGE,
            leftMargin=MARGIN_X,
            rightMargin=MARGIN_X,
            topMargin=MARGIN_TOP,
            bottomMargin=MARGIN_BOTTOM,
            **info,
        )
        self.page_frame = frame
        body = Frame(
            MARGIN_X, MARGIN_BOTTOM, FRAME_WIDTH, PAGE[1] - MARGIN_TOP - MARGIN_BOTTOM, id="body"
        )
        self.addPageTemplates(
            [
                PageTemplate(id="cover", frames=[body], onPage=self._cover_page),
                PageTemplate(id="body", frames=[body], onPage=self._body_page),
            ]
        )

    def afterFlowable(self, flowable: Flowable) -> None:
        if isinstance(flowable, SectionTitle):
            self.canv.bookmarkPage(flowable.key)
            self.canv.addOutlineEntry(flowable.outline_title, flowable.key, level=0)

    def _cover_page(self, canv: Canvas, doc: Any) -> None:
        self._footer(canv)

    def _body_page(self, canv: Canvas, doc: Any) -> None:
        frame = self.page_frame
        top = PAGE[1] - 12 * mm
        canv.saveState()
        canv.setFont(FONT_BOLD, 8)
        canv.setFillColor(ACCENT)
        canv.drawString(MARGIN_X, top, f"{frame.trial_code} · {frame.title}")
        canv.setFont(FONT, 8)
        canv.setFillColor(MUTED)
        canv.drawRightString(PAGE[0] - MARGIN_X, top, f"Data cut-off {frame.cut_off.isoformat()}")
        canv.setStrokeColor(RULE)
        canv.setLineWidth(0.5)
        canv.line(MARGIN_X, top - 4, PAGE[0] - MARGIN_X, top - 4)
        canv.restoreState()
        self._footer(canv)

    def _footer(self, canv: Canvas) -> None:
        y = 10 * mm
        canv.saveState()
        canv.setStrokeColor(RULE)
        canv.setLineWidth(0.5)
        canv.line(MARGIN_X, y + 9, PAGE[0] - MARGIN_X, y + 9)
        canv.setFont(FONT, 6.5)
        canv.setFillColor(MUTED)
        label = "Audit chain head "
        canv.drawString(MARGIN_X, y, label)
        canv.setFont(FONT_MONO, 6.5)
        canv.drawString(
            MARGIN_X + pdfmetrics.stringWidth(label, FONT, 6.5), y, self.page_frame.audit_head
        )
        canv.restoreState()


class NumberedCanvas(Canvas):
    """Two passes over the pages for "Page x of y": each page's drawing is kept when it
    ends, and written out at save time, once the total is known, with its number added."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._page_number(total)
            super().showPage()
        super().save()

    def _page_number(self, total: int) -> None:
        self.saveState()
        self.setFont(FONT, 8)
        self.setFillColor(INK)
        self.drawRightString(PAGE[0] - MARGIN_X, 10 * mm, f"Page {self._pageNumber} of {total}")
        self.restoreState()
