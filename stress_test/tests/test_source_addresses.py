"""testkit/source_addresses.py: each load-generator client reaches the server from its own loopback address."""

from __future__ import annotations

import http.server
import threading

import pytest

from testkit import source_addresses


@pytest.fixture(scope="module")
def echo_url():
    """A tiny HTTP server on 127.0.0.1 that answers with the client's address as it saw it."""

    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = self.client_address[0].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_addresses_fill_one_subnet_then_the_next():
    assert [source_addresses.source_address(i) for i in (0, 1, 249, 250, 499)] == [
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.250",
        "127.0.2.1",
        "127.0.2.250",
    ]
    with pytest.raises(ValueError):
        source_addresses.source_address(-1)


def test_requests_session_connects_from_its_address(echo_url):
    with source_addresses.session(0) as a, source_addresses.session(251) as b:
        assert (a.get(echo_url).text, b.get(echo_url).text, a.get(echo_url).text) == (
            "127.0.1.1",
            "127.0.2.2",
            "127.0.1.1",
        )


def test_http_connection_connects_from_its_address(echo_url):
    port = int(echo_url.rsplit(":", 1)[1].rstrip("/"))
    conn = source_addresses.http_connection("127.0.0.1", port, 6, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"127.0.1.7"
    conn.close()
