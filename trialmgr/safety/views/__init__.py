"""Safety pages: adverse events (list, CSV, form, the event's page with follow-up and signed
review), labs (entry with the grade as it is typed, a subject's results), expedited-report
clocks, a trial's stopping rules and reporting table, the work queue, notifications and the
MedDRA import.

Every write goes through the service the API calls, by way of `trialmgr.forms.submit`: a
refused form is re-rendered with the refusal's status and its errors at the fields.
"""

from trialmgr.safety import audit_reading  # noqa: F401  (registers the audit labels)
from trialmgr.safety.views import adverse_events, event, inbox, labs, reports
from trialmgr.safety.views.common import bp

__all__ = ["adverse_events", "bp", "event", "inbox", "labs", "reports"]
