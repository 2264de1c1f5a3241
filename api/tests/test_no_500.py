"""Every route, with every method, hostile queries, headers and bodies: never a 500, never an error logged as
unhandled (503 and 504 are the faults' answers: Redis is not reachable here)."""

import itertools
import json
import logging

import pytest

from testkit import photo as read_photo
from testkit.multipart_cases import multipart_cases

ROUTES = [
    "/",
    "/predict",
    "/feedback",
    "/heatmap.png",
    "/health",
    "/ready",
    "/ready/details",
    "/metrics",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/resnet50",
    "/v2/models/resnet50/versions/1",
    "/v2/models/resnet50/ready",
    "/v2/models/resnet50/config",
    "/v2/models/resnet50/stats",
    "/v2/models/stats",
    "/v2/models/resnet50/infer",
    "/v2/models/resnet50/versions/1/infer",
    "/v2/models/resnet50/versions/x%00/infer",
    "/v2/repository/index",
    "/v2/repository/models/resnet50/load",
    "/v2/repository/models/resnet50/unload",
    "/uploads/x.jpg",
    "/static/../app.py",
]
QUERIES = ["", "?top_k=abc", "?top_k=99999999999999999999", "?top_k=3&top_k=4", "?explain=maybe", "?%ff%fe=1"]


def _multipart(*parts: tuple[str, bytes]) -> bytes:
    """A multipart body with boundary x; each part is (Content-Disposition parameters, content)."""
    body = b"".join(f"--x\r\nContent-Disposition: form-data; {d}\r\n\r\n".encode() + c + b"\r\n" for d, c in parts)
    return body + b"--x--\r\n"


def _requests() -> list[tuple[dict, bytes | None]]:
    jpeg = read_photo()
    form = {"Content-Type": "multipart/form-data; boundary=x"}
    as_json = {"Content-Type": "application/json"}
    return [
        ({}, None),
        (as_json, b"[" * 5000),
        (as_json, b'{"a": NaN, "b": Infinity, "report": [1], "prediction": {"a": 1}}'),
        (as_json, b"\xff\xfe\x00"),
        (as_json, json.dumps({"parameters": {"version": [1]}, "inputs": [{"name": ["image"]}]}).encode()),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"report=" + b"%ff" * 100 + b"&top_k=1&file=x"),
        ({"Content-Type": "multipart/form-data"}, b"--x\r\n"),
        (form, _multipart(('name="file"; filename="a.jpg"', jpeg[:100]))),
        (form, _multipart(('name="file"; filename="\xff.jpg"', jpeg))),
        (form, _multipart(('name="file"; filename="../../a.jpg"', jpeg), ('name="file"; filename="b.png"', b"xx"))),
        (form, _multipart(('name="top_k"', b"9" * 5000), ('name="explain"', b"\x00"))),
        ({"Content-Type": "multipart/form-data; boundary=" + "b" * 70}, b"garbage"),
        ({"Inference-Header-Content-Length": "-5"}, b"{}"),
        ({"Inference-Header-Content-Length": "99999999999999999999999"}, b"{}"),
        ({"Content-Encoding": "gzip, gzip"}, b"\x1f\x8b"),
        ({"Content-Encoding": "deflate"}, b"x\x9c" + bytes(10)),
        ({"X-Request-Start": "t=nan"}, b"{}"),
        ({"X-Request-Start": "t=1e400"}, b"{}"),
        ({"Accept": "*/*;q=nan", "Accept-Encoding": "gzip;q=abc"}, b'{"inputs": []}'),
        ({"Origin": "http://elsewhere", "Content-Type": "text/plain"}, b"x"),
    ]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"])
def test_no_request_is_a_500(app, method, caplog):
    client, failures = app.test_client(), []
    with caplog.at_level(logging.ERROR):
        for route, query in itertools.product(ROUTES, QUERIES):
            for headers, body in _requests():
                local = {"REMOTE_ADDR": "127.0.0.1"}  # the repository routes answer local clients only
                response = client.open(route + query, method=method, data=body, headers=headers, environ_base=local)
                if response.status_code >= 500 and response.status_code not in (503, 504):
                    failures.append((route + query, headers, (body or b"")[:40], response.status_code))
    assert not failures, failures[:5]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records][:5]


# The page's routes (and paths no route takes) answer browsers; every other route answers programs.
PAGE_ROUTES = {"/", "/feedback", "/uploads/x.jpg", "/static/../app.py"}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "FOO"])
def test_every_error_a_program_route_gives_is_json_in_its_routes_shape(app, method):
    """/v2 paths, routed or not: exactly {"error"}; the operational routes and the overlay: an object with its
    "error"; a 405 names what the route allows in both the body and Allow; /predict: the course's keys."""
    client, failures = app.test_client(), []
    for route in sorted(set(ROUTES) - PAGE_ROUTES):
        for headers, body in _requests():
            response = client.open(route, method=method, data=body, headers=headers)
            if response.status_code < 400:
                continue
            answer = response.get_json(silent=True)
            keys = set(answer) if isinstance(answer, dict) else None
            if route == "/predict":
                right = keys in ({"success", "prediction", "score"}, {"success", "prediction", "score", "error"})
            else:
                right = bool(keys) and isinstance(answer.get("error"), str)
                right = right and (keys == {"error"} or not route.startswith("/v2"))
                if response.status_code == 405:
                    right = right and "allowed: " in answer["error"] and bool(response.headers.get("Allow"))
            if not right:
                failures.append((method, route, headers, response.status_code, response.data[:80]))
    assert not failures, failures[:5]


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    "method, path",
    [("PUT", "/"), ("DELETE", "/feedback"), ("POST", "/uploads/x.jpg"), ("GET", "/nope"), ("GET", "/a/b")],
)
@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "image/avif,image/webp,*/*"])
def test_a_page_route_or_unknown_path_answers_a_program_in_json(app, method, path, accept):
    """Only a client that ranks HTML first (a browser) gets werkzeug's HTML page; curl, requests and an <img> get
    JSON naming the method or path (/feedback in its own shape), with the status and a 405's Allow."""
    response = app.test_client().open(path, method=method, headers={"Accept": accept} if accept else {})
    assert response.status_code in (404, 405) and response.mimetype == "application/json"
    answer = response.get_json()
    assert set(answer) == ({"success", "error"} if path == "/feedback" else {"error"})  # the route's own shape
    error = answer["error"]
    if response.status_code == 405:
        assert error.startswith(f"method {method} not allowed on {path}; allowed: ") and response.headers["Allow"]
    else:
        assert error == f"no such route: {path}"
    browser = app.test_client().open(path, method=method, headers={"Accept": BROWSER})
    assert browser.status_code == response.status_code and browser.mimetype == "text/html"


@pytest.mark.parametrize("route", ["/predict", "/", "/feedback"])
def test_broken_multipart_bodies_are_never_a_500(app, route, caplog):
    """Seeded uploads with their multipart framing gone wrong (testkit/multipart_cases.py: the boundary parameter,
    the part headers, the delimiters, the number and nesting of parts, stray bytes): never a 500 or an error logged
    as unhandled; /predict answers each in its JSON shape. A failure names the case that reproduces it."""
    client, failures = app.test_client(), []
    with caplog.at_level(logging.ERROR):
        for case in multipart_cases(read_photo(), seed=20261206, count=600):
            response = client.post(route, data=case.body, headers={"Content-Type": case.content_type})
            answer = response.get_json(silent=True)
            shaped = route != "/predict" or (isinstance(answer, dict) and "success" in answer)
            if (response.status_code >= 500 and response.status_code not in (503, 504)) or not shaped:
                failures.append((case.number, case.mutations, response.status_code, response.data[:80]))
    assert not failures, failures[:5]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records][:5]
