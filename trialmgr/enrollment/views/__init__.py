"""Pages: trials and their design (corrections during setup, amendments after opening,
consent approvals per site), the cohort board, the screening log, enrolment, the
subject page (consent, dosing, visits, withdrawal) and the coordinator's visits due.

Every write goes through the same service the API calls; a refused form is re-rendered
with its errors and the refusal's status (422 fields, 409 a rule), and a dosing gate's
refusal shows the gate by name ("Sentinel stagger: next dosing allowed on ...").
"""

from trialmgr.enrollment.views import (
    amendments,
    design,
    exits,
    screening,
    subjects,
    trials,
    visits,
)
from trialmgr.enrollment.views.common import bp

__all__ = ["amendments", "bp", "design", "exits", "screening", "subjects", "trials", "visits"]
