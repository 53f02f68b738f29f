"""/api/v1/auth and /api/v1/users."""

from __future__ import annotations

from typing import Any

from flask import current_app, g

from trialmgr.auth import services
from trialmgr.auth.models import ADMIN, User
from trialmgr.auth.policies import ANY_ROLE, current_actor, public, roles
from trialmgr.auth.schemas import (
    SignOutIn,
    TokenIn,
    TokenInfoOut,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
    UserQuery,
)
from trialmgr.db import paginate, utcnow
from trialmgr.extensions import ApiBlueprint, db, limiter

blp = ApiBlueprint("auth_api", __name__, url_prefix="/api/v1", description="Accounts and tokens")


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@blp.route("/auth/tokens", methods=["POST"])
@public
@blp.doc(security=[])
@limiter.limit(_login_limit)
@blp.arguments(TokenIn)
@blp.response(201, TokenOut)
def create_token(data: dict[str, Any]) -> dict[str, Any]:
    """Exchange e-mail and password for a bearer token (shown once)."""
    now = utcnow()
    user = services.authenticate(data["email"], data["password"], now, channel="api")
    token, clear = services.issue_token(user, now, data.get("name"))
    return {
        "id": token.id,
        "token": clear,
        "name": token.name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    }


@blp.route("/auth/tokens", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, TokenInfoOut(many=True))
def list_tokens() -> list[Any]:
    """Your tokens, newest first (the clear value is never shown again)."""
    return services.tokens_of(current_actor())


@blp.route("/auth/tokens/current", methods=["DELETE"])
@roles(*ANY_ROLE)
@blp.response(204)
def revoke_current_token() -> None:
    """Revoke the token this request was made with (API logout)."""
    services.revoke_token(current_actor(), g.api_token, utcnow())


@blp.route("/auth/tokens/<int:token_id>", methods=["DELETE"])
@roles(*ANY_ROLE)
@blp.response(204)
def revoke_token(token_id: int) -> None:
    """Revoke one of your tokens (administrators: anyone's)."""
    actor = current_actor()
    services.revoke_token(actor, services.get_token_of(actor, token_id), utcnow())


@blp.route("/auth/me", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, UserOut)
def me() -> User:
    return current_actor()


@blp.route("/users", methods=["GET"])
@roles(ADMIN)
@blp.arguments(UserQuery, location="query")
@blp.response(200, UserOut(many=True))
@blp.paginate()
def list_users(filters: dict[str, Any], pagination_parameters: Any) -> list[User]:
    return paginate(db.session, services.user_query(filters), pagination_parameters)


@blp.route("/users", methods=["POST"])
@roles(ADMIN)
@blp.arguments(UserIn)
@blp.response(201, UserOut)
def create_user(data: dict[str, Any]) -> User:
    return services.create_user(current_actor(), data)


@blp.route("/users/<int:user_id>", methods=["GET"])
@roles(ADMIN)
@blp.response(200, UserOut)
def get_user(user_id: int) -> User:
    return services.get_user(user_id)


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@roles(ADMIN)
@blp.arguments(UserPatch)
@blp.response(200, UserOut)
def update_user(data: dict[str, Any], user_id: int) -> User:
    return services.update_user(current_actor(), services.get_user(user_id), data)


@blp.route("/users/<int:user_id>/sessions/revoke", methods=["POST"])
@roles(ADMIN)
@blp.arguments(SignOutIn)
@blp.response(204)
def sign_out_everywhere(data: dict[str, Any], user_id: int) -> None:
    """Sign a user out everywhere: end their browser sessions and revoke their API tokens."""
    services.sign_out_everywhere(current_actor(), services.get_user(user_id), data.get("reason"))
