"""py-spy's collapsed stacks into a profile of busy threads: blocked threads left out, shares of the busy samples."""

from __future__ import annotations

import pytest

from stress_test.pyspy_profile import is_wait, leaf_profile

POOL_WAIT = "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81)"
HANDLER = "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:83);predict (views.py:149)"


@pytest.mark.parametrize(
    "frame",
    [
        "_worker (concurrent/futures/thread.py:81)",
        "EpollSelector.select (selectors.py:468)",
        "Condition.wait (threading.py:331)",
        "Event.wait (threading.py:629)",
        "_HiredisParser.read_from_socket (redis/_parsers/hiredis.py:192)",
        "SocketBuffer._read_from_socket (redis/_parsers/socket.py:65)",
    ],
)
def test_blocking_leaves_are_waits(frame):
    assert is_wait(frame)


@pytest.mark.parametrize(
    "frame",
    [
        "Session.run (onnxruntime/capi/onnxruntime_inference_collection.py:395)",
        "ImageFile.load (PIL/ImageFile.py:425)",
        "Condition.__init__ (threading.py:248)",  # threading.py, but not a wait
        "_worker (myapp/thread.py:12)",  # a wait's name in another file
        "AbstractConnection.send_packed_command (redis/connection.py:1349)",
        "not a frame",
    ],
)
def test_work_is_not_a_wait(frame):
    assert not is_wait(frame)


def test_shares_count_only_the_busy_samples():
    lines = [
        f"{POOL_WAIT} 60\n",
        f"{HANDLER};ImageFile.load (PIL/ImageFile.py:425) 30\n",
        f"{HANDLER};_HiredisParser.read_from_socket (redis/_parsers/hiredis.py:192) 20\n",
        f"{HANDLER};Image.resize (PIL/Image.py:2440) 10\n",
        f"{HANDLER};ImageFile.load (PIL/ImageFile.py:425) 10\n",  # the same leaf from another line adds up
        "a line without a count\n",
        "\n",
    ]
    profile = leaf_profile(lines)
    assert profile["busy"] == round(50 / 130, 3)
    assert profile["top"] == [("ImageFile.load (PIL/ImageFile.py:425)", 0.8), ("Image.resize (PIL/Image.py:2440)", 0.2)]
    assert leaf_profile(lines, top=1)["top"] == [("ImageFile.load (PIL/ImageFile.py:425)", 0.8)]


def test_nothing_sampled_or_only_waits():
    assert leaf_profile([]) == {"busy": 0.0, "top": []}
    assert leaf_profile([f"{POOL_WAIT} 5"]) == {"busy": 0.0, "top": []}
