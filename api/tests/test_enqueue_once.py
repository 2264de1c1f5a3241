"""A job is never enqueued twice: the XADD is not retried when the connection drops after sending it."""

import socket
import threading

import pytest

from resnet_common import protocol
import images
import middleware
from testkit import free_port
from errors import BrokerUnavailable
from fakeworker import heartbeat


class DropAfterXadd(threading.Thread):
    """A TCP proxy to the real Redis that forwards everything, but closes a connection right after forwarding
    an XADD — Redis has run it, the client never sees the reply (like a network cut at the worst moment)."""

    def __init__(self, redis_port: int):
        super().__init__(daemon=True)
        self.redis_port, self.port = redis_port, free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.xadds = 0

    def run(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.redis_port))
            cut = threading.Event()
            threading.Thread(target=self._pipe, args=(upstream, client, False, cut), daemon=True).start()
            threading.Thread(target=self._pipe, args=(client, upstream, True, cut), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, watch: bool, cut: threading.Event) -> None:
        try:
            while data := src.recv(1 << 16):
                if cut.is_set():
                    return  # the reply to the XADD never reaches the client
                dst.sendall(data)
                if watch and b"XADD" in data.upper():
                    cut.set()
                    self.xadds += 1
                    src.settimeout(0.5)  # forward the rest of the command (150 KiB of pixels), then cut
                    try:
                        while more := src.recv(1 << 16):
                            dst.sendall(more)
                    except TimeoutError:
                        pass
                    for s in (src, dst):
                        s.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def proxy(redis_env, redis_server, monkeypatch):
    p = DropAfterXadd(redis_server.port)
    p.start()
    monkeypatch.setenv("REDIS_PORT", str(p.port))
    yield p
    p.close()


def test_a_dropped_xadd_is_not_sent_again(proxy, redis_env, photo):
    heartbeat(redis_env, "w1")
    upload = images.decode(photo(), "a.jpg")
    with pytest.raises(BrokerUnavailable):
        middleware.model_predict(upload)
    assert proxy.xadds == 1
    assert redis_env.xlen(protocol.JOB_STREAM) == 1  # Redis ran it once; nobody queued a second copy
