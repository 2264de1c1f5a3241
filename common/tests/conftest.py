"""The shared package's tests: a real redis-server from testkit (the repository root is on sys.path, pytest.ini)."""

pytest_plugins = ["testkit.fixtures"]
