"""One language for dates: a service's sentence keeps its dates as values (`clock.Phrase`,
`Day`, `Moment`). The API prints them ISO (its `detail` is machine-stable); pages print them
through one function (`templating.page_text`) in the reader's date format and, for an instant
on a site's clock, with the zone's label for that date ("09:00 (Rome, CET)" in winter,
"CEST" in summer)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from flask import Flask
from flask_login import login_user

from tests.factories import make_user
from trialmgr.auth.models import User
from trialmgr.clock import Day, Moment, Phrase
from trialmgr.errors import Conflict, Invalid
from trialmgr.extensions import db
from trialmgr.forms import refusal_of
from trialmgr.templating import format_date, format_site_moment, page_text, zone_label

WINTER = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # 09:00 in Rome, CET (UTC+1)
SUMMER = datetime(2026, 7, 15, 7, 0, tzinfo=UTC)  # 09:00 in Rome, CEST (UTC+2)

# The user's choice on /account, and 4 December 2026 as it reads.
FORMATS = [
    ("YYYY-MM-DD", "2026-12-04"),
    ("DD-MMM-YYYY", "04-Dec-2026"),
    ("DD/MM/YYYY", "04/12/2026"),
    ("MM/DD/YYYY", "12/04/2026"),
]


@contextlib.contextmanager
def reader(app: Flask, date_format: str, timezone: str = "UTC") -> Iterator[None]:
    """A request by a signed-in user with this date format and zone."""
    made = make_user(app, "consortium_lead")
    with app.test_request_context():
        user = db.session.get_one(User, made["id"])
        user.date_format, user.timezone = date_format, timezone
        login_user(user)
        yield
        db.session.rollback()


def stagger(moment: datetime = WINTER) -> Phrase:
    return Phrase("next dosing allowed on {next}", next=Moment(moment, "Europe/Rome"))


# --- the zone's label ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "moment", "label"),
    [
        ("Europe/Rome", WINTER, "Rome, CET"),
        ("Europe/Rome", SUMMER, "Rome, CEST"),
        ("America/Los_Angeles", WINTER, "Los Angeles, PST"),
        ("America/Los_Angeles", SUMMER, "Los Angeles, PDT"),
        ("UTC", WINTER, "UTC"),
    ],
)
def test_zone_label_names_the_city_and_the_abbreviation_on_that_date(zone, moment, label):
    assert zone_label(zone, moment) == label


# --- the machine form (API) ---------------------------------------------------------------


def test_a_phrase_prints_its_dates_iso_for_the_api():
    assert str(stagger()) == "next dosing allowed on 2026-12-04 09:00 CET (Europe/Rome)"
    assert str(stagger(SUMMER)) == "next dosing allowed on 2026-07-15 09:00 CEST (Europe/Rome)"
    assert str(Phrase("Before {on}.", on=Day(date(2026, 12, 4)))) == "Before 2026-12-04."
    signed = Phrase("Before the decision ({at}).", at=Moment(WINTER))
    assert str(signed) == "Before the decision (2026-12-04T08:00:00+00:00)."


def test_a_refusal_keeps_iso_in_detail_and_errors_and_the_phrase_for_pages():
    exc = Invalid(
        stagger(),
        errors={"on": [Phrase("Before the loss ({on}).", on=Day(date(2026, 12, 4)))]},
    )
    assert exc.detail == "next dosing allowed on 2026-12-04 09:00 CET (Europe/Rome)"
    assert exc.errors == {"on": ["Before the loss (2026-12-04)."]}
    assert isinstance(exc.message, Phrase) and isinstance(exc.field_messages["on"][0], Phrase)


# --- the page form ------------------------------------------------------------------------


@pytest.mark.parametrize(("choice", "shown"), FORMATS)
def test_pages_print_dates_in_each_format_the_user_can_choose(app, choice, shown):
    with reader(app, choice):
        assert format_date(date(2026, 12, 4)) == shown
        assert format_site_moment(WINTER, "Europe/Rome") == f"{shown} 09:00 (Rome, CET)"
        assert page_text(stagger()) == f"next dosing allowed on {shown} 09:00 (Rome, CET)"
        day = Phrase("Before the loss ({on}).", on=Day(date(2026, 12, 4)))
        assert page_text(day) == f"Before the loss ({shown})."


def test_a_summer_instant_is_labelled_cest_and_a_winter_one_cet(app):
    with reader(app, "DD/MM/YYYY", timezone="Asia/Tokyo"):
        assert page_text(stagger(SUMMER)) == "next dosing allowed on 15/07/2026 09:00 (Rome, CEST)"
        assert page_text(stagger(WINTER)) == "next dosing allowed on 04/12/2026 09:00 (Rome, CET)"


def test_an_instant_without_a_site_reads_on_the_readers_own_clock(app):
    with reader(app, "DD/MM/YYYY", timezone="Asia/Tokyo"):
        signed = Phrase("Before the decision ({at}).", at=Moment(WINTER))
        assert page_text(signed) == "Before the decision (04/12/2026 17:00 JST)."


def test_joined_phrases_keep_their_dates_as_values(app):
    causes = Phrase.joined(
        "; ",
        [
            Phrase("IBC expired on {on}", on=Day(date(2026, 3, 1))),
            "no SIV granted by then",
        ],
    )
    whole = Phrase("Dosing not allowed on {on}: {causes}.", on=Day(date(2026, 4, 2)), causes=causes)
    assert str(whole) == (
        "Dosing not allowed on 2026-04-02: IBC expired on 2026-03-01; no SIV granted by then."
    )
    with reader(app, "DD-MMM-YYYY"):
        assert page_text(whole) == (
            "Dosing not allowed on 02-Apr-2026: IBC expired on 01-Mar-2026; no SIV granted by then."
        )


def test_the_one_page_path_renders_a_refusals_sentence_and_field_errors(app):
    """`forms.refusal_of` is how every page (summary, field errors, flash) reads a refusal."""
    exc = Conflict(
        stagger(),
        title="Sentinel stagger",
        errors={"dosed_at": [Phrase("On or after {on}.", on=Day(date(2026, 12, 4)))]},
    )
    with reader(app, "DD/MM/YYYY"):
        refusal = refusal_of("dosing", exc)
    assert refusal.title == "Sentinel stagger" and refusal.status == 409
    assert refusal.detail == "next dosing allowed on 04/12/2026 09:00 (Rome, CET)"
    assert refusal.errors == {"dosed_at": ["On or after 04/12/2026."]}
    assert exc.detail == "next dosing allowed on 2026-12-04 09:00 CET (Europe/Rome)"  # unchanged
