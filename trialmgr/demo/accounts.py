"""Demo users, one per role."""

from __future__ import annotations

from trialmgr.auth import services
from trialmgr.auth.models import SystemActor
from trialmgr.auth.passwords import DEMO_PASSWORD

__all__ = ["DEMO_PASSWORD", "USERS", "seed"]

USERS = [
    ("admin@example.org", "Ada Admin", "admin"),
    ("lead@example.org", "Lena Lead", "consortium_lead"),
    ("monitor@example.org", "Sam Safety", "safety_monitor"),
    ("coordinator@example.org", "Carla Coordinator", "coordinator"),
    ("coordinator.fr@example.org", "Camille Coordinatrice", "coordinator"),
]


def seed() -> list[tuple[str, str]]:
    actor = SystemActor(email="system:demo")
    for email, name, role in USERS:
        # The demo's password is published; the policy refuses it everywhere else.
        services.create_user(
            actor,
            {"email": email, "name": name, "role": role, "password": DEMO_PASSWORD},
            allow_demo_password=True,
        )
    return [(email, role) for email, _, role in USERS]
