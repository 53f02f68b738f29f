"""How partners, sites and approvals read in the audit trail. Registered on import."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trialmgr.audit import readable
from trialmgr.extensions import db
from trialmgr.partners.models import Partner, Site, SiteApproval, SiteStatusChange


def _sites(ids: list[str]) -> dict[str, str]:
    query = sa.select(Site.id, Site.code).where(Site.id.in_(readable.int_ids(ids)))
    return {str(k): v for k, v in db.session.execute(query)}


def _partners(ids: list[str]) -> dict[str, str]:
    query = sa.select(Partner.id, Partner.short_name).where(Partner.id.in_(readable.int_ids(ids)))
    return {str(k): v for k, v in db.session.execute(query)}


def _of_site(model: Any, what: Any) -> readable.Namer:
    """Records of one site: named by the site's code and `what`."""
    return readable.named_by(model, Site.code, what, joins=[(Site, Site.id == model.site_id)])


REFERENCES = {"site_id": "site", "partner_id": "partner"}
LABELS = {
    "target_enrollment": "Target enrolment",
    "principal_investigator": "Principal investigator",
    "granted_on": "Granted on",
    "expires_on": "Expires on",
    "withdrawn_on": "Withdrawn on",
    "short_name": "Short name",
    "consortium_role": "Consortium role",
}

readable.register("site", "site", _sites, LABELS, REFERENCES)
readable.register("partner", "partner", _partners, LABELS, REFERENCES)
readable.register(
    "site_approval", "approval", _of_site(SiteApproval, SiteApproval.kind), LABELS, REFERENCES
)
readable.register(
    "site_status_change",
    "status change of",
    _of_site(SiteStatusChange, SiteStatusChange.change),
    LABELS,
    REFERENCES,
)
