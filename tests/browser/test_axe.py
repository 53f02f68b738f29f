"""axe-core on every page of every role: no serious or critical violation, no console error.

The pages are those of the menu and the records behind them in the demo consortium (a
dosed Rome subject with adverse events, labs and efficacy data; GT-01; Rome's site), and
each role's forms. Every page's findings are written to tests/browser/artifacts/ as JSON,
so a run shows all of them, not only the first page that fails.
"""

from __future__ import annotations

import json

from tests.browser.conftest import ARTIFACTS, SERIOUS, axe_result, describe, start_axe

EVERYONE = [
    "/",
    "/partners",
    "/partners/{partner}",
    "/sites",
    "/sites/{site}",
    "/trials",
    "/trials/{trial}",
    "/subjects",
    "/subjects/{subject}",
    "/subjects/{subject}/labs",
    "/subjects/{subject}/efficacy",
    "/adverse-events",
    "/adverse-events/{ae}",
    "/expedited-reports",
    "/tasks",
    "/notifications",
    "/feasibility",
    "/trials/{trial}/feasibility",
    "/trials/{trial}/milestones",
    "/trials/{trial}/consort",
    "/reports",
    "/safety",
    "/safety/trials/{trial}",
    "/safety/trials/{trial}/events",
    "/safety/trials/{trial}/clocks",
    "/safety/trials/{trial}/labs",
    "/safety/trials/{trial}/signals",
    "/safety/subjects/{subject}",
    "/efficacy",
    "/trials/{trial}/efficacy",
    "/account",
]
MANAGERS = [
    "/partners/new",
    "/partners/{partner}/edit",
    "/sites/new",
    "/sites/{site}/edit",
    "/trials/new",
    "/trials/{trial}/amendments",
    "/trials/{trial}/cohorts",
    "/trials/{trial}/safety-rules",
    "/audit",
    "/screenings",
]
PAGES: dict[str, list[str]] = {
    "coordinator": [
        *EVERYONE,
        "/screenings",
        "/screenings/{screening}",
        "/screenings/new",
        "/subjects/new",
        "/visits/due",
        "/adverse-events/new",
        "/labs/new",
    ],
    "safety_monitor": [*EVERYONE, "/trials/{trial}/safety-rules"],
    "consortium_lead": [*EVERYONE, *MANAGERS],
    "admin": [
        *EVERYONE,
        *MANAGERS,
        "/visits/due",
        "/admin/users",
        "/admin/users/new",
        "/admin/users/{user}",
        "/admin/meddra",
    ],
}


def test_every_page_of_every_role_has_no_serious_axe_violation(open_page, live_server, axe_source):
    """The roles walk their pages side by side: each page is checked while the next role's
    page loads, which halves the walk on two cores."""
    pages = {role: open_page(role) for role in PAGES}
    everything: dict[str, dict[str, list[str]]] = {role: {} for role in PAGES}
    failing: list[str] = []
    templates = list(dict.fromkeys(t for paths in PAGES.values() for t in paths))
    for template in templates:
        roles = [role for role in PAGES if template in PAGES[role]]
        for role in roles:
            path = template.format(**live_server.targets)
            response = pages[role].goto(path)
            assert response is not None and response.status == 200, f"{role} {path}"
            start_axe(pages[role], axe_source)
        for role in roles:
            found = axe_result(pages[role])
            everything[role][template] = [
                f"{v['id']} ({v['impact']}, {len(v['nodes'])})" for v in found
            ]
            serious = [v for v in found if v["impact"] in SERIOUS]
            if serious:
                failing.append(f"{role} {template}: {describe(serious)}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(json.dumps(everything, indent=1))
    assert not failing, "\n".join(failing)
