"""The app's JSON provider: request.get_json treats too-deep nesting as invalid JSON, not a RecursionError."""

from flask import request


def test_the_apps_get_json_sees_too_deep_nesting_as_invalid(app):
    with app.test_request_context("/", method="POST", data="[" * 100_000, content_type="application/json"):
        assert request.get_json(silent=True) is None
    with app.test_request_context("/", method="POST", data='{"a": [1]}', content_type="application/json"):
        assert request.get_json() == {"a": [1]}
