"""JSON from outside: every malformed document, however deeply nested, is a ValueError."""

import pytest

import safe_json


def test_loads_parses_json_and_reports_too_deep_nesting_as_invalid():
    assert safe_json.loads(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    nested = safe_json.loads("[" * 50 + "]" * 50)  # deep, but parseable: parsed
    for _ in range(49):
        (nested,) = nested
    assert nested == []
    with pytest.raises(ValueError, match="nested too deeply"):
        safe_json.loads("[" * 100_000)


def test_the_apps_get_json_sees_too_deep_nesting_as_invalid(app):
    with app.test_request_context("/", method="POST", data="[" * 100_000, content_type="application/json"):
        from flask import request

        assert request.get_json(silent=True) is None
