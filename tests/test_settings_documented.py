"""Every setting of each service has a row in its own section of docs/settings.md (the settings pattern's promise)."""

import dataclasses
import importlib.util
import re

import pytest

from testkit.paths import REPO

SETTINGS_DOC = REPO / "docs" / "settings.md"
SECTIONS = {"api": "## API (api/settings.py)", "model": "## Model workers (model/settings.py)"}


def _settings_fields(service: str) -> list[str]:
    spec = importlib.util.spec_from_file_location(f"{service}_settings", REPO / service / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [f.name for f in dataclasses.fields(module.Settings)]


def _section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    assert heading in lines, f"{SETTINGS_DOC.name} has no heading {heading!r}"
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"#{1,2} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def _table_rows(section: str) -> list[str]:
    """Names of the settings the section's table rows document: `| \\`NAME\\` | default | meaning |`."""
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|[^|\n]*\|[^\n]*\|$", section, flags=re.MULTILINE)


@pytest.mark.parametrize("service", sorted(SECTIONS))
def test_every_setting_has_a_row_in_its_service_section(service):
    rows = _table_rows(_section(SETTINGS_DOC.read_text(), SECTIONS[service]))
    missing = [name for name in _settings_fields(service) if name not in rows]
    assert not missing, f"{service}/settings.py fields without a row under {SECTIONS[service]!r}: {missing}"


@pytest.mark.parametrize("service", sorted(SECTIONS))
def test_no_row_for_a_setting_the_service_does_not_have(service):
    rows = _table_rows(_section(SETTINGS_DOC.read_text(), SECTIONS[service]))
    unknown = sorted(set(rows) - set(_settings_fields(service)))
    duplicated = sorted({name for name in rows if rows.count(name) > 1})
    assert not unknown, f"rows under {SECTIONS[service]!r} for settings {service}/settings.py lacks: {unknown}"
    assert not duplicated, f"settings with more than one row under {SECTIONS[service]!r}: {duplicated}"
