"""Extension objects, created unbound; create_app() binds them."""

import http
import importlib
from typing import Any

import click
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_smorest import Api, Blueprint
from flask_smorest.pagination import PaginationMetadataSchema
from flask_smorest.utils import prepare_response, resolve_schema_instance
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from trialmgr.db import Base, render_migration_type
from trialmgr.errors import PROBLEM_MIMETYPE, ProblemOut

db = SQLAlchemy(model_class=Base)


class LazyMigrate:
    """Flask-Migrate, loaded (and alembic with it) only when a migration runs.

    Importing Flask-Migrate imports alembic, its DDL dialects and mako; the app, its CLI
    and a worker's first request need none of them. `init_app` registers the `db` command
    group by name and puts a configuration in `app.extensions["migrate"]` that has what
    Flask-Migrate's functions and migrations/env.py read (`db`, `directory`,
    `configure_args`, and `migrate`, the real `flask_migrate.Migrate`, made on first use).
    """

    def __init__(self, **alembic_options: Any) -> None:
        self.alembic_options = alembic_options
        self.directory = "migrations"
        self._migrate: Any = None

    def init_app(self, app: Any, db: SQLAlchemy, directory: str) -> None:
        self.directory = directory
        app.extensions["migrate"] = MigrateConfig(self, db)
        app.cli.add_command(
            LazyGroup("db", "flask_migrate.cli:db", help="Perform database migrations.")
        )

    @property
    def migrate(self) -> Any:
        """The real `flask_migrate.Migrate` (imports alembic)."""
        if self._migrate is None:
            from flask_migrate import Migrate

            self._migrate = Migrate(directory=self.directory, **self.alembic_options)
        self._migrate.directory = self.directory
        return self._migrate


class MigrateConfig:
    """What Flask-Migrate keeps in `app.extensions["migrate"]` (its `_MigrateConfig`)."""

    def __init__(self, lazy: LazyMigrate, db: SQLAlchemy) -> None:
        self.lazy = lazy
        self.db = db
        self.directory = lazy.directory
        self.configure_args = dict(lazy.alembic_options)

    @property
    def migrate(self) -> Any:
        return self.lazy.migrate

    @property
    def metadata(self) -> Any:
        return self.db.metadata


class LazyGroup(click.Group):
    """A CLI command group imported when it is invoked (`target`: "module:attribute"); its
    name and help show in `flask --help` without importing it."""

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name, help=help)
        self.target = target

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        module, attribute = self.target.split(":")
        group = getattr(importlib.import_module(module), attribute)
        return group.make_context(info_name, args, parent=parent, **extra)


migrate = LazyMigrate(render_as_batch=True, compare_type=True, render_item=render_migration_type)
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


class LazyDocApi(Api):
    """flask-smorest's Api, documenting the API only when the document is asked for.

    Registering a blueprint registers its routes at once but converts its schemas to
    OpenAPI (the costly part of building an app) on the first request for
    /api/v1/openapi.json, so the CLI, the scheduler and a worker's first request do not
    pay for documentation nobody asked for.
    """

    # Error answers are problem+json (trialmgr/errors.py), and so documented.
    ERROR_SCHEMA = ProblemOut

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._undocumented: list[tuple[Any, str, Any]] = []

    def init_app(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self._undocumented = []  # a new app (tests build several): a new spec, nothing pending
        super().init_app(app, *args, **kwargs)

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    def document(self) -> None:
        """Write the registered blueprints' operations into the spec (once)."""
        while self._undocumented:
            blp, name, parameters = self._undocumented.pop(0)
            blp.register_views_in_doc(self, self._app, self.spec, name=name, parameters=parameters)
            self.spec.tag({"name": name, "description": blp.description})

    def _register_responses(self) -> None:
        """flask-smorest's responses per status and its default error response, with the
        body every error answer has: problem details, as application/problem+json."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "An error (problem details)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)

    def _register_pagination_header(self) -> None:
        """X-Pagination holds a JSON object: documented as JSON content (OpenAPI 3 header
        `content`), not as an object serialised in the header's "simple" style."""
        header = {
            "description": "Pagination metadata (JSON)",
            "content": {"application/json": {"schema": PaginationMetadataSchema}},
        }
        self.spec.components.header("PAGINATION", header, lazy=True)

    def _openapi_json(self) -> Any:
        self.document()
        return super()._openapi_json()


api = LazyDocApi()


class ApiBlueprint(Blueprint):
    """API blueprints: lists paginate 100 a page by default, up to 1000."""

    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 100, "max_page_size": 1000}

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """As flask-smorest's, with the schema built once when the route is declared:
        given a class, webargs would build a new instance (its fields deep-copied) for
        every request. Schemas hold no per-request state, so one instance serves all."""
        return super().arguments(resolve_schema_instance(schema), *args, **kwargs)
