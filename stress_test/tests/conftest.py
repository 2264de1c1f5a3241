"""The stress tools' tests use the shared harness (testkit) for the tiny model and the real stack."""

pytest_plugins = ["testkit.fixtures"]
