"""PDF builders: one module per report kind, each a list of registered sections (see
registry.py); importing this package registers them all."""

from trialmgr.reports.builders import (  # noqa: F401
    dsmb_events,
    dsmb_safety,
    feasibility,
    site_enrollment,
)
from trialmgr.reports.builders.registry import TEMPLATE_VERSIONS, ReportContext, build

__all__ = ["TEMPLATE_VERSIONS", "ReportContext", "build"]
