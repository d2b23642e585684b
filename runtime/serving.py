"""An ASGI app served by a real uvicorn on a loopback port, in a thread: the demo's push target, the tests' servers."""

from __future__ import annotations

import random
import socket
import threading
import time

import uvicorn

__all__ = ["ServerThread", "free_port"]

# Below Linux's ephemeral range (32768-60999): a port handed out by bind(0) can be taken by any outgoing connection
# between our close and the server's bind, which two busy test passes side by side did (EADDRINUSE in CI).
_LOW, _HIGH = 20000, 32767


def free_port() -> int:
    """A loopback port outside the ephemeral range that nothing listens on now, for a server started elsewhere."""
    for _ in range(200):
        port = random.randint(_LOW, _HIGH)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free loopback port found")


def _listening(port: int | None) -> socket.socket:
    """A socket bound now and kept, so nothing can take the port before uvicorn serves on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port or 0))
    except OSError:
        sock.close()
        raise
    return sock


class ServerThread:
    """`with ServerThread(app) as server:` serves `app` at `server.url` until the block ends."""

    def __init__(self, app: object, port: int | None = None) -> None:
        self.socket = _listening(port)
        self.port = int(self.socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.socket],), daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.socket.close()
                raise RuntimeError("server thread did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
