"""service_code.service_module imports a service's own module the way the service does, one service per process."""

from __future__ import annotations

import pytest

from stress_test.artifacts import REPO
from stress_test.service_code import service_module


def test_model_module_is_the_services_own_file():
    session = service_module("model", "session")
    assert session.__file__ == str(REPO / "model" / "session.py") and callable(session.open_session)


def test_a_second_service_or_an_unknown_one_is_refused():
    service_module("model", "session")
    with pytest.raises(RuntimeError, match="one service per process"):
        service_module("api", "job_client")  # both have a `settings` module: mixing them would import the wrong one
    with pytest.raises(ValueError):
        service_module("conversion", "flops")
