"""Browser tests: Debian's Chromium driven by pytest-playwright against a live server.

The app runs in a thread on a free port, on a database of its own from the suite's database
machinery (SQLite or PostgreSQL, as TEST_DATABASE_URL says), seeded once per session with
`flask demo seed`: the demo consortium has a page of every kind for every role. Every test
here runs in one xdist group, so one worker starts one browser and one server.

Each role signs in through the login form once per module (a browser context per role);
a test opens pages in it with `open_page(role)`. A page fails its test on any console
error, uncaught exception or Content-Security-Policy violation. A failed test leaves a
full-page screenshot under tests/browser/artifacts/ (ignored by git, kept by CI).

Never `playwright install`: the browser is the system's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page
from werkzeug.serving import make_server

from tests.conftest import _base_config, _build_app, _close_connections

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
AXE = HERE / "vendor" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo-password-2026"
ACCOUNTS = {
    "admin": "admin@example.org",
    "consortium_lead": "lead@example.org",
    "safety_monitor": "monitor@example.org",
    "coordinator": "coordinator@example.org",
}

REFUSAL_STATUS = re.compile(
    r"Failed to load resource: the server responded with a status of (409|422) "
)
# Reported to the console by the page itself, so the console listener sees them.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI);
});
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One worker for every browser test: one browser, one server, one seeded database."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    }


def _demo_targets() -> dict[str, Any]:
    """Ids and codes of demo records the pages are walked on: GT-01, a dosed Rome subject
    with adverse events, labs and efficacy data, and Rome's site."""
    import sqlalchemy as sa

    from trialmgr.auth.models import User
    from trialmgr.enrollment.models import Dosing, Screening, Subject, Trial
    from trialmgr.extensions import db
    from trialmgr.partners.models import Site
    from trialmgr.safety.models import AdverseEvent, AdverseEventReview

    one = db.session.execute
    trial = one(sa.select(Trial).where(Trial.code == "GT-01")).scalar_one()
    rome = one(sa.select(Site).where(Site.code == "IT01")).scalar_one()
    dosed = (
        sa.select(Subject)
        .join(Dosing, Dosing.subject_id == Subject.id)
        .join(AdverseEvent, AdverseEvent.subject_id == Subject.id)
        .where(Subject.site_id == rome.id, Subject.trial_id == trial.id)
        .order_by(Subject.id)
    )
    subject = one(dosed).scalars().first()
    assert subject is not None
    ae = one(sa.select(AdverseEvent).where(AdverseEvent.subject_id == subject.id)).scalars()
    screening = one(sa.select(Screening).where(Screening.site_id == rome.id)).scalars()
    reviewed = sa.select(AdverseEventReview.id).where(
        AdverseEventReview.adverse_event_id == AdverseEvent.id,
        AdverseEventReview.version == AdverseEvent.version,
    )
    unreviewed = one(sa.select(AdverseEvent.id).where(~reviewed.exists()).order_by(AdverseEvent.id))
    return {
        "trial": trial.id,
        "site": rome.id,
        "partner": rome.partner_id,
        "subject": subject.code,
        "ae": ae.first().id,
        "screening": screening.first().id,
        "unreviewed_ae": unreviewed.scalars().first(),
        "dosed_at": one(sa.select(Dosing.dosed_at).where(Dosing.subject_id == subject.id))
        .scalars()
        .one(),
        "user": one(sa.select(User.id).where(User.role == "coordinator")).scalars().first(),
    }


class Gate:
    """Holds the requests of one method and path at the server until released, counting
    them: a test can act while a form's request is in flight."""

    def __init__(self, method: str, path: str) -> None:
        self.method, self.path = method, path
        self.arrived = threading.Semaphore(0)
        self.released = threading.Event()
        self.count = 0

    def wait_arrival(self, timeout: float = 10) -> None:
        assert self.arrived.acquire(timeout=timeout), f"no {self.method} {self.path} arrived"


class LiveServer:
    """The WSGI app served by werkzeug in a thread."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        with app.app_context():
            self.targets = _demo_targets()
        self.gates: list[Gate] = []
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        for gate in list(self.gates):
            if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) == (gate.method, gate.path):
                gate.count += 1
                gate.arrived.release()
                gate.released.wait(30)
        return self.app(environ, start_response)

    @contextlib.contextmanager
    def hold(self, method: str, path: str) -> Iterator[Gate]:
        """Requests to `method path` wait at the server until the block ends."""
        gate = Gate(method, path)
        self.gates.append(gate)
        try:
            yield gate
        finally:
            self.gates.remove(gate)
            gate.released.set()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture(scope="session")
def live_server(databases: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    uri = databases.new()
    app = _build_app(_base_config(uri), tmp_path_factory.mktemp("live-instance"))
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = LiveServer(app)
    yield server
    server.stop()
    _close_connections(app)
    databases.release(uri)


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def sign_in(browser: Browser, base_url: str, email: str, **context_args: Any) -> BrowserContext:
    """A browser context signed in through the login form."""
    context = browser.new_context(base_url=base_url, **context_args)
    context.add_init_script(_CSP_LISTENER)
    page = context.new_page()
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(?!login)[^/]*$"))
    assert "/login" not in page.url, f"{email} could not sign in"
    page.close()
    return context


class Pages:
    """Opens pages in a role's signed-in context, collecting what each page reports."""

    def __init__(self, contexts: dict[str, BrowserContext]) -> None:
        self.contexts = contexts
        self.opened: list[tuple[Page, list[str]]] = []

    def __call__(self, role: str) -> Page:
        page = self.contexts[role].new_page()
        problems: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            # A refused form answers 409 or 422 by design; Chromium logs any 4xx document.
            if message.type == "error" and not REFUSAL_STATUS.match(message.text):
                problems.append(f"console error on {page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: problems.append(f"uncaught on {page.url}: {exc}"))
        self.opened.append((page, problems))
        return page


@pytest.fixture(scope="module")
def role_contexts(browser: Browser, live_server: LiveServer) -> Iterator[dict[str, BrowserContext]]:
    """One signed-in context per role, made on first use, for the module's tests."""
    made: dict[str, BrowserContext] = {}

    class Contexts(dict[str, BrowserContext]):
        def __missing__(self, role: str) -> BrowserContext:
            made[role] = sign_in(browser, live_server.url, ACCOUNTS[role])
            self[role] = made[role]
            return made[role]

    yield Contexts()
    for context in made.values():
        context.close()


@pytest.fixture()
def open_page(
    request: pytest.FixtureRequest, role_contexts: dict[str, BrowserContext]
) -> Iterator[Callable[[str], Page]]:
    """`open_page(role)`: a new page in that role's context; console errors fail the test."""
    pages = Pages(role_contexts)
    yield pages
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for n, (page, _) in enumerate(pages.opened):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
            page.screenshot(path=str(ARTIFACTS / f"{name}-{n}.png"), full_page=True)
    problems = [p for _, found in pages.opened for p in found]
    for page, _ in pages.opened:
        page.close()
    assert not problems, "\n".join(problems)


SERIOUS = ("serious", "critical")


AXE_OPTIONS = "{resultTypes: ['violations'], preload: false}"


def start_axe(page: Page, axe_source: str) -> None:
    """Start axe-core on the page as it is now, without waiting: pages of several roles are
    checked at once (each in its own renderer) while the server renders the next one."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    page.evaluate(f"() => {{ window.__axe = axe.run(document, {AXE_OPTIONS}); }}")


def axe_result(page: Page) -> list[dict[str, Any]]:
    """The violations (every impact) found by the run `start_axe` began."""
    return list(page.evaluate("async () => (await window.__axe).violations"))


def run_axe(page: Page, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's violations (every impact) on the page as it is now."""
    start_axe(page, axe_source)
    return axe_result(page)


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [", ".join(node["target"]) for node in v["nodes"][:5]]
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {'; '.join(targets)}")
    return "\n".join(lines)
