"""The goodput measurement's bookkeeping: windows alternate 8, 64, 64, 8 and each load is pooled over its windows."""

from __future__ import annotations

from stress_test import shed_bench


def window(clients: int, ok: int, p50: float, p99: float, statuses: dict[str, int]) -> dict:
    return {
        "concurrency": clients,
        "duration_s": 20.0,
        "ok": ok,
        "sent": sum(statuses.values()) + 3,
        "ok_per_s": ok / 20.0,
        "statuses": statuses,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": p99 + 10,
    }


def test_pooled_divides_the_summed_answers_by_the_summed_windows():
    rounds = [
        window(64, 400, 1200.0, 1800.0, {"200": 400, "503": 100}),
        window(64, 440, 1100.0, 1900.0, {"200": 440, "503": 60}),
        window(64, 420, 1300.0, 1700.0, {"200": 420, "503": 80, "502": 1}),
    ]
    got = shed_bench.pooled(rounds)
    assert got["duration_s"] == 60.0 and got["ok"] == 1260 and got["ok_per_s"] == 21.0
    assert got["statuses"] == {"200": 1260, "503": 240, "502": 1}
    assert got["shed_rate"] == round(240 / 1501, 4) and got["other_statuses"] == {"502": 1}
    assert got["p50_ms"] == 1200.0 and got["p99_ms"] == 1900.0 and got["max_ms"] == 1910.0
    assert got["rounds"] == 3 and got["sent"] == sum(sum(r["statuses"].values()) + 3 for r in rounds)


def test_goodput_alternates_the_loads_and_judges_the_pooled_rates(monkeypatch):
    order: list[int] = []
    rates = {8: iter([400, 380]), 64: iter([360, 400])}  # a machine slowing down: 8 first, then 64 first

    def fake_measure(url: str, clients: int, duration: float, warmup: float) -> dict:
        order.append(clients)
        ok = next(rates[clients]) if clients in rates else 300
        return {**window(clients, ok, 500.0, 900.0, {"200": ok}), "shed_rate": 0.0}

    monkeypatch.setattr(shed_bench, "measure", fake_measure)
    result = shed_bench.goodput("http://127.0.0.1:1", 20.0, 1.0, rounds=2)
    assert order == [8, 64, 64, 8, 160]
    assert result["runs"]["8"]["ok_per_s"] == 19.5 and result["runs"]["64"]["ok_per_s"] == 19.0
    assert result["ratio_64_vs_8"] == round(19.0 / 19.5, 3)
    assert [w["ok"] for w in result["rounds"]["64"]] == [360, 400] and result["p99_160_ms"] == 900.0
