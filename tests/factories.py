"""Test helpers: make users and act as them through the API or the pages.

Users and their tokens are made through the services; the login route itself is tested in
tests/test_auth.py."""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from trialmgr.auth import services as auth_services
from trialmgr.auth.models import SystemActor
from trialmgr.db import utcnow
from trialmgr.extensions import db

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def make_user(
    app: Flask, role: str, site_ids: list[int] | None = None, email: str | None = None
) -> dict[str, Any]:
    email = email or f"{role}{next(_seq)}@example.org"
    with app.app_context():
        user = auth_services.create_user(
            SystemActor(email="system:test"),
            {
                "email": email,
                "name": email.split("@")[0].title(),
                "role": role,
                "password": PASSWORD,
                "site_ids": site_ids or [],
            },
        )
        db.session.commit()
        return {"id": user.id, "email": user.email, "role": role}


class ApiClient:
    """JSON calls to /api/v1 with an optional bearer token."""

    def __init__(self, app: Flask, token: str | None = None, user: dict[str, Any] | None = None):
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.token = token
        self.user = user

    def as_role(self, role: str, site_ids: list[int] | None = None) -> ApiClient:
        user = make_user(self.app, role, site_ids)
        return self.as_user(user)

    def as_user(self, user: dict[str, Any]) -> ApiClient:
        """A client holding a new token of `user`, issued as POST /auth/tokens issues it."""
        with self.app.app_context():
            now = utcnow()
            account = auth_services.authenticate(user["email"], PASSWORD, now, channel="api")
            _, token = auth_services.issue_token(account, now)
            db.session.commit()
        return ApiClient(self.app, token, user)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _path(self, path: str) -> str:
        return path if path.startswith("/api/") else f"/api/v1{path}"

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(self._path(path), headers=self._headers(), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.client.post(self._path(path), json=json, headers=self._headers(), **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.client.patch(self._path(path), json=json, headers=self._headers(), **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.client.delete(self._path(path), headers=self._headers(), **kw)


def login_page(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    return client.post("/login", data={"email": email, "password": password})
