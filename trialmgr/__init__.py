"""trialmgr: the application factory."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from trialmgr.db import INT_MAX
from trialmgr.lifecycle import TrialmgrFlask, register_request_hooks

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = TrialmgrFlask(
        __name__,
        instance_path=os.environ.get("TRIALMGR_INSTANCE", str(ROOT / "instance")),
        template_folder=str(ROOT / "templates"),
    )
    load_config(app, overrides)
    register_extensions(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_commands(app)
    return app


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    """config/default.py, then the TRIALMGR_CONFIG file, then env vars, then overrides."""
    app.config.from_pyfile(str(ROOT / "config" / "default.py"))
    if os.environ.get("TRIALMGR_CONFIG"):
        app.config.from_pyfile(os.environ["TRIALMGR_CONFIG"])
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if os.environ.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    if os.environ.get("TRIALMGR_ENV") == "production":
        app.config["PRODUCTION"] = True
    app.config.update(overrides or {})

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{app.instance_path}/trialmgr.db"
    if app.config["PRODUCTION"]:
        key = app.config.get("SECRET_KEY") or ""
        if len(key) < 32:
            raise RuntimeError(
                "Refusing to start in production without a real SECRET_KEY (32+ random characters)."
            )
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    elif not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _local_secret(Path(app.instance_path) / "secret_key")


def _local_secret(path: Path) -> str:
    """Outside production, a random key kept in the instance folder (never committed)."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def register_extensions(app: Flask) -> None:
    from trialmgr.audit.services import install_listeners
    from trialmgr.auth.sessions import install_user_loader
    from trialmgr.extensions import api, csrf, db, limiter, login_manager, migrate
    from trialmgr.templating import register_templating

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    api.init_app(app, spec_kwargs={"info": {"description": "trialmgr API (see ARCHITECTURE.md)"}})
    if "bearerAuth" not in api.spec.components.security_schemes:
        api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    install_listeners()
    register_templating(app)
    install_user_loader(login_manager)


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` ids above the database's integer range are simply not found (404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", INT_MAX)
        super().__init__(map, *args, **kwargs)


def register_blueprints(app: Flask) -> None:
    from trialmgr.audit import api as audit_api
    from trialmgr.audit import views as audit_views
    from trialmgr.auth import api as auth_api
    from trialmgr.auth import views as auth_views
    from trialmgr.dashboard import views as dashboard_views
    from trialmgr.efficacy import api as efficacy_api
    from trialmgr.efficacy import views as efficacy_views
    from trialmgr.enrollment import api as enrollment_api
    from trialmgr.enrollment import views as enrollment_views
    from trialmgr.errors import register_error_handlers
    from trialmgr.exports import api as exports_api
    from trialmgr.exports import views as exports_views
    from trialmgr.extensions import api, csrf
    from trialmgr.milestones import api as milestones_api
    from trialmgr.milestones import views as milestones_views
    from trialmgr.partners import api as partners_api
    from trialmgr.partners import views as partners_views
    from trialmgr.reports import api as reports_api
    from trialmgr.reports import views as reports_views
    from trialmgr.safety import api as safety_api
    from trialmgr.safety import dashboard as safety_dashboard
    from trialmgr.safety import views as safety_views
    from trialmgr.safety.services import work as safety_work

    app.url_map.converters["int"] = BoundedIntConverter
    # API blueprints authenticate with bearer tokens only, so CSRF does not apply.
    for module in (
        auth_api,
        audit_api,
        partners_api,
        enrollment_api,
        safety_api,
        efficacy_api,
        milestones_api,
        reports_api,
        exports_api,
    ):
        api.register_blueprint(module.blp)
        csrf.exempt(module.blp)
    for module in (
        auth_views,
        audit_views,
        dashboard_views,
        partners_views,
        enrollment_views,
        safety_views,
        safety_dashboard,
        efficacy_views,
        milestones_views,
        reports_views,
        exports_views,
    ):
        app.register_blueprint(module.bp)
    register_error_handlers(app)
    safety_work.connect()


def register_commands(app: Flask) -> None:
    from trialmgr.audit.cli import audit_cli
    from trialmgr.auth.cli import users_cli
    from trialmgr.backup.cli import backup_cli
    from trialmgr.demo.cli import demo_cli
    from trialmgr.exports.cli import export_cli
    from trialmgr.extensions import LazyGroup
    from trialmgr.reports.cli import reports_cli

    for group in (
        users_cli,
        audit_cli,
        demo_cli,
        reports_cli,
        # APScheduler's schedulers, executors and job stores load when the scheduler runs
        LazyGroup("scheduler", "trialmgr.scheduler:scheduler_cli", "The report scheduler process."),
        export_cli,
        backup_cli,
    ):
        app.cli.add_command(group)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
