"""Flask's JSON provider with safe_json's parser: `request.get_json` sees too-deep nesting as the invalid JSON it
is (silent: None, else a 400), never a RecursionError (a 500)."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

import safe_json


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's default provider, parsing with `safe_json.loads`."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return safe_json.loads(s, **kwargs)
