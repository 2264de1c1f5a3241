"""Every setting of both services is documented in the README (the settings pattern's promise)."""

import dataclasses
import importlib.util
import re

import pytest

from testkit.paths import REPO


def _settings_fields(service: str) -> list[str]:
    spec = importlib.util.spec_from_file_location(f"{service}_settings", REPO / service / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [f.name for f in dataclasses.fields(module.Settings)]


@pytest.mark.parametrize("service", ["api", "model"])
def test_every_setting_is_in_the_readme(service):
    text = "\n".join(p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))
    missing = [name for name in _settings_fields(service) if name not in documented]
    assert not missing, f"{service}/settings.py fields missing from README.md and docs/: {missing}"
