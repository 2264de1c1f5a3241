"""--weights imagenet without network fails fast, names both alternatives, converts nothing.

No network is simulated with real sockets: a closed local port (refused at once) and a server that accepts
connections but never answers (only the timeout can end the wait). KERAS_HOME points at an empty folder so
no cached file short-circuits the download.
"""

import os
import socket
import time

import pytest

from helpers import run_cli
from testkit import free_port
from weights import IMAGENET_FILE, URL_ENV, WeightsError, fetch_imagenet_weights


def assert_names_alternatives(message: str) -> None:
    assert "--weights random" in message
    assert "--weights /path/to/" in message and ".weights.h5" in message


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


def test_refused_connection_fails_at_once(empty_keras_home):
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        fetch_imagenet_weights(f"http://127.0.0.1:{free_port()}/{IMAGENET_FILE}", timeout_s=5)
    assert time.monotonic() - start < 2
    assert_names_alternatives(str(info.value))
    assert not (empty_keras_home / "models" / IMAGENET_FILE).exists()


def test_silent_server_fails_after_the_timeout(empty_keras_home):
    import keras  # noqa: F401  (imported first so the timing below measures only the download attempt)

    with socket.socket() as server:  # listening: the kernel completes the handshake, nobody ever replies
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        start = time.monotonic()
        with pytest.raises(WeightsError) as info:
            fetch_imagenet_weights(f"http://127.0.0.1:{server.getsockname()[1]}/{IMAGENET_FILE}", timeout_s=1)
        assert time.monotonic() - start < 5
    assert_names_alternatives(str(info.value))


def test_cli_exits_2_with_the_message_and_writes_nothing(tmp_path, empty_keras_home):
    env = {**os.environ, URL_ENV: f"http://127.0.0.1:{free_port()}/{IMAGENET_FILE}"}
    start = time.monotonic()
    done = run_cli("convert.py", "--weights", "imagenet", "--out-dir", str(tmp_path / "out"), env=env)
    assert time.monotonic() - start < 10  # no TensorFlow import before the network check
    assert done.returncode == 2
    assert_names_alternatives(done.stderr)
    assert not (tmp_path / "out").exists()
