"""JSON from outside the API (request bodies, entries anyone with Redis access could write) parsed so that every
malformed document is a ValueError: one nested deeper than the interpreter's recursion limit raises RecursionError
in `json.loads`, which no route would catch (a 500). No web framework here: the codecs and the job client use it;
flask_json gives Flask's `request.get_json` the same behaviour.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes | bytearray, **kwargs: Any) -> Any:
    """`json.loads`, with nesting too deep to parse reported as invalid JSON (ValueError)."""
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
