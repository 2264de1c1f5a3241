"""Application factory: configuration, blueprints, metrics and error handlers; nothing connects at import.

`app = create_app()` at the bottom keeps `from app import app` and `gunicorn app:app` working.
"""

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, request

import body_drain
import flask_json
import health
import metrics
import metrics_server
import multipart_form
import overlay
import repository_control
import request_ids
from resnet_common import malloc_policy
import responses
import same_origin
import secret_key
import settings
import v2_routes
import views

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s]: %(message)s"  # request_ids.py
MAX_URLENCODED_BYTES = 64 * 1024  # no route takes more than a few short url-encoded fields
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'none'; "
    "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` (tests) overrides values read from the environment."""
    if not logging.getLogger().handlers:  # gunicorn leaves the root logger bare; keep our INFO lines
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        for handler in logging.getLogger().handlers:
            handler.addFilter(request_ids.LogFilter())
    malloc_policy.apply()  # gunicorn imports the app in each worker process before its request threads start
    app = Flask(__name__, instance_path=settings.INSTANCE_PATH)
    app.request_class = multipart_form.Request
    debug = settings.debug()
    app.config.from_mapping(
        SECRET_KEY=settings.SECRET_KEY,
        MAX_CONTENT_LENGTH=settings.MAX_CONTENT_LENGTH,
        # Multipart (multipart_form.py): a text field holds at most this much in memory (a file part is spooled
        # to disk past 500 KiB), and a form has at most this many parts.
        MAX_FORM_MEMORY_SIZE=500_000,
        MAX_FORM_PARTS=32,
        DEBUG=debug,
    )
    if config:
        app.config.update(config)
    app.json = flask_json.SafeJSONProvider(app)  # request.get_json: too-deep nesting is invalid JSON, not a 500
    app.json.sort_keys = False  # keep the documented key order: success, prediction, score[, top_k]
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key.load_or_create(app.instance_path)

    @app.before_request
    def bound_urlencoded_forms():
        """werkzeug reads a url-encoded body whole into memory (no per-field limit): cap its size everywhere."""
        if request.mimetype == "application/x-www-form-urlencoded":
            limit = MAX_URLENCODED_BYTES
            current = request.max_content_length
            request.max_content_length = limit if current is None else min(current, limit)

    request_ids.init_app(app)
    same_origin.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(overlay.bp)
    app.register_blueprint(v2_routes.bp)  # the Open Inference Protocol (docs/protocol.md)
    app.register_blueprint(repository_control.bp)
    metrics.init_app(app)
    app.register_blueprint(metrics_server.bp)
    responses.register_error_handlers(app)

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # nginx lets through bodies of at most MAX_CONTENT_LENGTH (client_max_body_size): the most there is to drain
    app.wsgi_app = body_drain.DrainBody(app.wsgi_app, settings.MAX_CONTENT_LENGTH)
    return app


app = create_app()
