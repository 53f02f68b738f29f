"""Report kinds as lists of sections, and the build that turns one into a PDF.

A section is one function: it takes the report's context and yields flowables. Register it
with `@section(kind, key, title, order)` in the kind's module and it appears in the report,
numbered in order, bookmarked, and it leaves the list of sections still to come (the
`planned` entries with the same key). Nothing else changes:

    @section("dsmb_safety", "aes_by_soc", "Adverse events by SOC and worst grade", order=40)
    def aes_by_soc(ctx: ReportContext) -> Iterator[Flowable]:
        summary = safety_summary(ctx.trial, until=ctx.cut_off)
        yield from data_table(COLUMNS, rows_of(summary))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import IO, Any

from reportlab.platypus import Flowable, KeepTogether, NextPageTemplate, PageBreak

from trialmgr.enrollment.models import Trial
from trialmgr.partners.models import Site
from trialmgr.reports.builders.document import NumberedCanvas, PageFrame, ReportDocument
from trialmgr.reports.builders.layout import (
    Column,
    SectionTitle,
    data_table,
    gap,
    key_values,
    note,
    rich,
)

SectionBuilder = Callable[["ReportContext"], Iterable[Flowable]]


@dataclass(frozen=True)
class ReportContext:
    """Everything a section may ask about the report it is part of."""

    kind: str
    title: str
    trial: Trial
    site: Site | None
    period_start: date
    cut_off: date  # the period's last day: events dated on or before it
    generated_at: datetime
    audit_head: str
    requested_by: str
    template: str
    report_id: int | None = None
    schedule_cron: str | None = None
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def scope(self) -> str:
        return "site" if self.site is not None else "trial"

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Numbers several sections show, computed once per report."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


@dataclass(frozen=True)
class Section:
    kind: str
    key: str
    title: str
    order: int
    build: SectionBuilder
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Planned:
    """A section the finished report will have, listed in the report until it is built."""

    key: str
    title: str
    detail: str


_SECTIONS: dict[str, dict[str, Section]] = {}
_PLANNED: dict[str, list[Planned]] = {}
_COVERS: dict[str, Callable[[ReportContext], Iterable[Flowable]]] = {}
TEMPLATE_VERSIONS: dict[str, str] = {}


def section(
    kind: str, key: str, title: str, order: int, scopes: tuple[str, ...] = ("trial", "site")
) -> Callable[[SectionBuilder], SectionBuilder]:
    """Register a section builder of a report kind."""

    def register(build: SectionBuilder) -> SectionBuilder:
        _SECTIONS.setdefault(kind, {})[key] = Section(kind, key, title, order, build, scopes)
        return build

    return register


def planned(kind: str, key: str, title: str, detail: str) -> None:
    """Announce a section still to come (shown in the report's "not yet included" list)."""
    _PLANNED.setdefault(kind, []).append(Planned(key, title, detail))


def cover(kind: str) -> Callable[[Callable[[ReportContext], Iterable[Flowable]]], Any]:
    def register(build: Callable[[ReportContext], Iterable[Flowable]]) -> Any:
        _COVERS[kind] = build
        return build

    return register


def sections_of(kind: str, scope: str = "trial") -> list[Section]:
    return sorted(
        (s for s in _SECTIONS.get(kind, {}).values() if scope in s.scopes),
        key=lambda s: (s.order, s.key),
    )


def pending_of(kind: str) -> list[Planned]:
    """Planned sections not built yet (a section registered under the key replaces one)."""
    built = set(_SECTIONS.get(kind, {}))
    return [p for p in _PLANNED.get(kind, []) if p.key not in built]


def kinds() -> list[str]:
    return sorted(_COVERS)


class LazyStory(list[Flowable]):
    """The story platypus consumes from the front, filled from a generator as it goes: a
    section yielding thousands of table chunks never holds them all at once."""

    LOOKAHEAD = 8

    def __init__(self, source: Iterator[Flowable]) -> None:
        super().__init__()
        self._source: Iterator[Flowable] | None = source

    def _fill(self, count: int) -> None:
        while self._source is not None and super().__len__() < count:
            try:
                super().append(next(self._source))
            except StopIteration:
                self._source = None

    def __len__(self) -> int:
        self._fill(self.LOOKAHEAD)
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        last = index.stop if isinstance(index, slice) else index
        if last is not None and last >= 0:
            self._fill(last + self.LOOKAHEAD)
        else:  # counted from the end: everything
            self._fill(1 << 62)
        return super().__getitem__(index)

    def __bool__(self) -> bool:
        return len(self) > 0


def _pending(ctx: ReportContext) -> Iterator[Flowable]:
    yield note(
        "This report is in its interim format: the sections below will be added when the "
        "services that compute their numbers are in place, so that the report and the "
        "dashboards show the same numbers. Until then, read them on the dashboards."
    )
    yield gap()
    columns = [Column("Section", 0.34, wrap=True), Column("What it will show", 0.66, wrap=True)]
    yield from data_table(columns, ((p.title, p.detail) for p in pending_of(ctx.kind)))


def _audit(ctx: ReportContext) -> Iterator[Flowable]:
    yield rich(
        "Every change to trial data is recorded in an append-only audit trail in which each "
        "row's hash covers the row and the previous row's hash. This report was made from "
        "the data as it stood when the chain ended in the hash below, which is also printed "
        "in every page's footer."
    )
    yield key_values([("Audit chain head", ctx.audit_head)], key_width=0.22)
    yield gap()
    yield rich(
        "To check the chain, run <font name='Report-Mono'>flask audit verify</font> or call "
        "<font name='Report-Mono'>GET /api/v1/audit/verify</font>: an intact chain that "
        "contains this hash shows that no audited record was changed quietly since."
    )


def _story(ctx: ReportContext) -> Iterator[Flowable]:
    yield from _COVERS[ctx.kind](ctx)
    yield NextPageTemplate("body")
    yield PageBreak()
    chapters: list[tuple[str, str, SectionBuilder]] = [
        (item.key, item.title, item.build) for item in sections_of(ctx.kind, ctx.scope)
    ]
    if pending_of(ctx.kind):
        chapters.append(("pending", "Not yet in this report", _pending))
    chapters.append(("audit", "Audit trail", _audit))
    for number, (key, title, build_section) in enumerate(chapters, start=1):
        body = iter(build_section(ctx))
        # A section starts on a page with room for its title and what opens it.
        yield KeepTogether([SectionTitle(number, title, key), *islice(body, 2)])
        yield from body


def outline(ctx: ReportContext) -> list[str]:
    """The section titles of this report, in order (the cover lists them)."""
    titles = [item.title for item in sections_of(ctx.kind, ctx.scope)]
    if pending_of(ctx.kind):
        titles.append("Not yet in this report")
    return [*titles, "Audit trail"]


def build(ctx: ReportContext, output: IO[bytes]) -> None:
    """Write the report's PDF to `output` (a binary file open for writing)."""
    frame = PageFrame(ctx.trial.code, ctx.title, ctx.cut_off, ctx.audit_head)
    document = ReportDocument(
        output,
        frame,
        title=f"{ctx.title}: {ctx.trial.code}, data cut-off {ctx.cut_off.isoformat()}",
        author="trialmgr",
        subject=f"{ctx.trial.code} {ctx.kind} {ctx.cut_off.isoformat()}",
        creator="trialmgr (reportlab)",
    )
    document.build(LazyStory(_story(ctx)), canvasmaker=NumberedCanvas)
