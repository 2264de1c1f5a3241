"""JSON from outside: every malformed document, however deeply nested, is a ValueError."""

import subprocess
import sys
from pathlib import Path

import pytest

import safe_json

API_DIR = Path(safe_json.__file__).parent


def test_loads_parses_json_and_reports_too_deep_nesting_as_invalid():
    assert safe_json.loads(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    nested = safe_json.loads("[" * 50 + "]" * 50)  # deep, but parseable: parsed
    for _ in range(49):
        (nested,) = nested
    assert nested == []
    with pytest.raises(ValueError, match="nested too deeply"):
        safe_json.loads("[" * 100_000)


def test_the_parser_and_the_protocol_codec_load_without_the_web_framework():
    """Both are pure functions on bytes; Flask stays in the modules that serve HTTP (flask_json for get_json)."""
    code = "import sys, safe_json, v2_codec; print(sorted(m for m in sys.modules if m.split('.')[0] == 'flask'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=API_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
