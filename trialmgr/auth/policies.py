"""Who may call which route, and which sites an actor sees.

Every route declares its roles with `@roles(...)` or says `@public`; a test
walks the URL map and fails on any route that does neither (deny by default).
API routes authenticate with a bearer token only (no cookies, so no CSRF
exposure); pages use the session login.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, redirect, request, url_for
from flask_login import current_user

from trialmgr.auth.models import (
    ADMIN,
    CONSORTIUM_LEAD,
    COORDINATOR,
    ROLES,
    SAFETY_MONITOR,
    User,
)
from trialmgr.db import utcnow
from trialmgr.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

# The role sets routes declare; defined here once (ARCHITECTURE.md, "Who creates what").
ANY_ROLE = ROLES
# Partners, sites, trial design, milestones, criteria.
MANAGERS = (ADMIN, CONSORTIUM_LEAD)
# Clinical data entry at the sites (screening, consent, enrolment, dosing, visits, exits):
# coordinators only; administrators read it but do not enter clinical data.
SITE_WORK = (COORDINATOR,)
# The coordinators' worklists, also read by administrators.
WORKLIST_READERS = (COORDINATOR, ADMIN)
# Who reads the screening log (safety monitors need subjects, not the log).
SCREENING_READERS = (COORDINATOR, ADMIN, CONSORTIUM_LEAD)


def public(fn: F) -> F:
    """Open to anyone: login, health, API docs."""
    fn._public = True  # type: ignore[attr-defined]
    return fn


def _bearer_user() -> User | None:
    from trialmgr.auth import services  # local: policies sit below services in import order
    from trialmgr.lifecycle import reading_before_writing

    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    # SQLite: the token is read before the request's write transaction takes the write lock.
    with reading_before_writing():
        token = services.resolve_token(credential.strip(), utcnow())
    if token is None:
        return None
    g.api_token = token
    return token.user


def roles(*allowed: str) -> Callable[[F], F]:
    """Admit only signed-in users whose role is in `allowed`."""
    unknown = set(allowed) - set(ROLES)
    if unknown or not allowed:
        raise ValueError(f"unknown roles {unknown}")

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if request.path.startswith("/api/"):
                user = _bearer_user()
                if user is None:
                    raise Unauthorized(
                        "Send a valid bearer token (POST /api/v1/auth/tokens).",
                    )
            else:
                if not current_user.is_authenticated:
                    return redirect(url_for("auth.login", next=request.full_path))
                user = current_user._get_current_object()
            if user.role not in allowed:
                raise Forbidden("Your role may not do this.")
            g.actor = user
            return fn(*args, **kwargs)

        wrapper._roles = frozenset(allowed)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def current_actor() -> User:
    """The user the `roles` guard admitted for this request."""
    return g.actor


def sees_all_sites(actor: Any) -> bool:
    return actor.role in (ADMIN, CONSORTIUM_LEAD, SAFETY_MONITOR) or actor.role == "system"


def site_scope(actor: Any) -> list[int] | None:
    """None when the actor sees every site; otherwise the ids of their sites."""
    if sees_all_sites(actor):
        return None
    if actor.role == COORDINATOR:
        from trialmgr.auth.services import site_ids_of

        return site_ids_of(actor)
    return []
