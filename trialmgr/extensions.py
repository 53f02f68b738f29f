"""Extension objects, created unbound; create_app() binds them."""

import http
from typing import Any

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api, Blueprint
from flask_smorest.pagination import PaginationMetadataSchema
from flask_smorest.utils import prepare_response, resolve_schema_instance
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from trialmgr.db import Base, render_migration_type
from trialmgr.errors import PROBLEM_MIMETYPE, ProblemOut

db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True, render_item=render_migration_type)
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
