"""The bounds on request heads and connections, over raw sockets, against the real `exact-pipeline receiver` command."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from ops.children import Children
from runtime.serving import free_port
from runtime.settings import Settings

DEADLINE = 30.0  # generous: every wait below ends as soon as its condition holds
Serve = Callable[..., AbstractContextManager[int]]


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Serve:
    """`with serve(receiver_max_headers=20) as port:` runs `exact-pipeline receiver` with those settings."""

    @contextmanager
    def run(**overrides: object) -> Iterator[int]:
        port = free_port()
        env = settings.model_copy(update=overrides).child_environment(os.environ)
        with Children(tmp_path / "logs") as children:
            children.start("receiver", [sys.executable, "-m", "cli.main", "receiver", "--port", str(port)], env)
            children.wait_http("receiver", f"http://127.0.0.1:{port}/healthz")
            yield port
            _wait_until(lambda: _healthz(port) == 200)  # still serving (once the test's connections are gone)

    return run


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)


def _head(*headers: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: receiver\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def _status(sock: socket.socket) -> int | None:
    """The status of the next response, its body read too; None when the server closed the connection instead."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length"
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1])


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection (read end of stream or a reset)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def _healthz(port: int) -> int | None:
    with _connect(port) as sock:
        sock.sendall(_head())
        return _status(sock)


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {DEADLINE:g}s")
        time.sleep(0.05)


class TestHeaderSize:
    def test_an_oversized_header_gets_431(self, serve: Serve) -> None:
        with serve(receiver_max_header_bytes=4096) as port, _connect(port) as sock:
            sock.sendall(_head(b"X-Fits: " + b"a" * 3000))
            assert _status(sock) == 200
            sock.sendall(_head(b"X-Big: " + b"a" * 8192))
            assert _status(sock) == 431
            assert _closed(sock)

    def test_an_unfinished_header_past_the_bound_gets_431(self, serve: Serve) -> None:
        with serve(receiver_max_header_bytes=4096) as port, _connect(port) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: receiver\r\nX-Big: " + b"a" * 4096)  # never finished
            assert _status(sock) == 431
            assert _closed(sock)

    def test_an_unfinished_huge_header_is_not_buffered(self, serve: Serve) -> None:
        # 32 MiB is far more than the kernel's socket buffers hold: it can all be sent only if the server keeps
        # reading (and buffering) it. With the bound, the server closes after 16 KiB and the sending fails.
        with serve() as port, _connect(port) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: receiver\r\nX-Big: ")
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                sock.sendall(b"a" * (32 << 20))


def test_too_many_headers_get_431(serve: Serve) -> None:
    with serve(receiver_max_headers=20) as port, _connect(port) as sock:
        sock.sendall(_head(*(b"X-H%d: v" % i for i in range(100))))
        assert _status(sock) == 431
        assert _closed(sock)


@pytest.mark.parametrize("trickle", [pytest.param(False, id="silent"), pytest.param(True, id="a-byte-at-a-time")])
def test_a_head_not_done_in_time_is_closed(serve: Serve, trickle: bool) -> None:
    with serve(receiver_header_timeout_seconds=0.5) as port, _connect(port) as sock:
        sock.settimeout(0.1)
        if trickle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: receiver\r\nX-Slow: ")
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                if _closed(sock):
                    return
            except TimeoutError:
                pass
            if trickle:
                try:
                    sock.sendall(b"a")  # every 0.1 s: a head that never ends
                except (BrokenPipeError, ConnectionResetError):
                    return
        pytest.fail(f"the connection was still open after {DEADLINE:g}s")


def test_connections_past_the_cap_get_503_while_open_ones_are_served(serve: Serve) -> None:
    with serve(receiver_max_connections=3) as port:
        open_ones = [_connect(port) for _ in range(3)]
        try:
            for sock in open_ones:  # each served once, so all three are open on the server's side
                sock.sendall(_head())
                assert _status(sock) == 200
            with _connect(port) as extra:
                assert _status(extra) == 503
                assert _closed(extra)
            for sock in open_ones:
                sock.sendall(_head())
                assert _status(sock) == 200
        finally:
            for sock in open_ones:
                sock.close()


def _answer(sock: socket.socket, request: bytes) -> bytes:
    """The whole response to `request` on a kept-alive connection: head and Content-Length bytes of body."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [v for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length"]
    length = 0 if request.startswith(b"HEAD ") else int(lengths[0])
    while len(body) < length:
        body += sock.recv(65536)
    assert len(body) == length
    return head + b"\r\n\r\n" + body


def test_responses_written_in_one_go_stay_whole_on_a_kept_alive_connection(serve: Serve) -> None:
    """The head is held until the body's write (serving._OneWrite): every kind of response still arrives whole, and
    a 100 Continue still before the body is sent."""
    with serve() as port, _connect(port) as sock:
        assert _answer(sock, _head()).endswith(b'\r\n\r\n{"status":"alive"}')
        head_only = _answer(sock, b"HEAD /healthz HTTP/1.1\r\nHost: receiver\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.1 200 ")
        assert head_only.endswith(b"\r\n\r\n")
        empty = b"POST /webhooks/exact HTTP/1.1\r\nHost: receiver\r\nContent-Length: 0\r\n\r\n"
        assert _answer(sock, empty).endswith(b'{"outcome":"validation","detail":""}')
        sock.sendall(
            b"POST /webhooks/exact HTTP/1.1\r\nHost: receiver\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # not held back with the response's head
        assert b" 401 " in _answer(sock, b"{}").split(b"\r\n", 1)[0]
        assert _answer(sock, _head()).endswith(b'{"status":"alive"}')  # the connection still in step
