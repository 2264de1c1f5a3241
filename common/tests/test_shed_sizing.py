"""The admission bound's derivation and the words `make run` and the report give it."""

from resnet_common import shed_sizing

CARD = {"workers": 2, "batch_size": 8, "img_s": 38.25, "source": "model card"}


def test_the_bound_is_the_rate_term_at_most_the_api_threads():
    free = shed_sizing.derive(CARD, 2.0)
    capped = shed_sizing.derive(CARD, 2.0, api_concurrency=32)
    assert (free["max_inflight"], free["max_inflight_source"]) == (77, "rate")  # ceil(38.25 x 2)
    assert (capped["max_inflight"], capped["max_inflight_source"], capped["retry_after_s"]) == (32, "API threads", 1)
    assert shed_sizing.derive(CARD, 2.0, max_inflight=7, api_concurrency=32)["max_inflight"] == 7


def test_the_start_line_names_the_threads_ceiling_only_when_there_is_one():
    capped = shed_sizing.describe(shed_sizing.derive(CARD, 2.0, api_concurrency=32))
    free = shed_sizing.describe(shed_sizing.derive(CARD, 2.0))
    assert "MAX_INFLIGHT 32 (API threads: floor (WORKERS 2 + 1) × BATCH_SIZE 8 = 24" in capped
    assert ", at most the API's threads 32)" in capped
    assert "threads" not in free and "None" not in free
    assert "fleet 38.25 img/s (model card)" in free


def test_without_a_measured_rate_the_line_says_so():
    shed = shed_sizing.derive({"workers": 1, "batch_size": 4, "source": "no model card"}, 2.0)
    assert (shed["max_inflight"], shed["retry_after_s"]) == (8, 1)
    assert "fleet no measured rate (no model card)" in shed_sizing.describe(shed)
