"""The one test harness every suite imports: free ports, waiting, a real redis-server, the whole stack as `make run`
serves it (testkit/stack.py), load clients from many loopback addresses (testkit/source_addresses.py), a tiny model.

Each suite's pytest.ini puts the repository root on `sys.path` (`pythonpath = . ..`) and its conftest loads the
fixtures with `pytest_plugins = ["testkit.fixtures"]`. Nothing here imports redis, requests or onnx at import time,
so the conversion suite (its own virtual environment) can use it too.
"""

from testkit.paths import PHOTOS, REPO, converted_model_dir, photo
from testkit.processes import free_port, refused_port, stop_process, wait_until
from testkit.redis_server import RedisServer
from testkit.stack import TEST_ENV, Stack, post_photo

__all__ = [
    "PHOTOS",
    "REPO",
    "RedisServer",
    "Stack",
    "TEST_ENV",
    "converted_model_dir",
    "free_port",
    "photo",
    "post_photo",
    "refused_port",
    "stop_process",
    "wait_until",
]
