"""Load-generator clients from many loopback source addresses, as real clients come from many hosts.

nginx limits concurrency per client address, so a load generator whose clients all leave from 127.0.0.1 would
measure that limit instead of the service. Linux routes all of 127.0.0.0/8 to `lo`, so client `i` binds
127.0.(1 + i // 250).(1 + i % 250) before connecting: 250 clients per /24, 63,500 addresses in all.
Three forms for the three kinds of client: `session()` (requests), `SourceAddressAdapter` (mounted on any
requests session, e.g. a Locust user's `self.client`) and `http_connection()` (http.client).
"""

from __future__ import annotations

import http.client

import requests
from requests.adapters import HTTPAdapter

PER_SUBNET = 250
MAX_CLIENTS = 254 * PER_SUBNET  # 127.0.1.x … 127.0.254.x


def source_address(i: int) -> str:
    """The loopback address client `i` (0-based) connects from: 127.0.1.1, 127.0.1.2, …, 127.0.2.1, …"""
    if not 0 <= i < MAX_CLIENTS:
        raise ValueError(f"client index {i} outside 0..{MAX_CLIENTS - 1}")
    return f"127.0.{1 + i // PER_SUBNET}.{1 + i % PER_SUBNET}"


class SourceAddressAdapter(HTTPAdapter):
    """A requests transport adapter whose connections leave from `address` (any free source port)."""

    def __init__(self, address: str, **kwargs) -> None:
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs) -> None:
        pool_kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def bind(session: requests.Session, i: int) -> requests.Session:
    """Make every http:// and https:// connection of `session` leave from client `i`'s address."""
    for scheme in ("http://", "https://"):
        session.mount(scheme, SourceAddressAdapter(source_address(i)))
    return session


def session(i: int) -> requests.Session:
    """A requests session for client `i`: keep-alive connections from its own loopback address."""
    return bind(requests.Session(), i)


def http_connection(host: str, port: int | None, i: int, timeout: float | None = None) -> http.client.HTTPConnection:
    """An http.client connection for client `i`, bound to its loopback address."""
    return http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source_address(i), 0))
