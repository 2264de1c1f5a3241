"""stall_watchdog.StallWatchdog: calls on_stall once, with the loop's age, the first time the loop is not alive."""

from __future__ import annotations

import threading

from stall_watchdog import StallWatchdog


def test_on_stall_is_called_once_when_the_loop_stops_coming_round():
    answers = iter([(True, 0.1), (True, 0.2), (False, 3.5), (False, 9.9)])
    stalls: list[float] = []
    called = threading.Event()

    def on_stall(age: float) -> None:
        stalls.append(age)
        called.set()

    watchdog = StallWatchdog(lambda: next(answers), on_stall, 0.01).start()
    assert called.wait(5)
    assert watchdog.join(5) and stalls == [3.5]


def test_a_stopped_watchdog_never_calls():
    stalls: list[float] = []
    watchdog = StallWatchdog(lambda: (False, 1.0), stalls.append, 0.2).start()
    watchdog.stop()
    assert watchdog.join(5) and stalls == []
