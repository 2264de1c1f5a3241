"""X-Request-ID values a client may send, and whether the service echoes each (True) or answers with an ID of its
own (False). The API (api/request_ids.py) and nginx (its $request_tag map) each apply the rule; both suites test
them against this one table, so a change to one rule that the other misses fails a test."""

import re

SENT_IDS: dict[str, bool] = {
    "trace-7.a:b_c": True,
    "A" * 64: True,
    "A" * 65: False,
    "": False,
    "two words": False,
    "x/y": False,
    "naïve": False,
    "x\ty": False,
}
MADE_ID = re.compile(r"[0-9a-f]{32}")  # the API's uuid4().hex and nginx's $request_id alike
