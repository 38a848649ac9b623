"""HTTP through a proxy on 127.0.0.1: one request, a poll, ab's load, a download."""

from __future__ import annotations

import re
import socket
import subprocess
import threading

AB_RESULT = re.compile(r"Requests per second:\s+([\d.]+)")


def request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()


def http_get(port: int, target: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One request on a new connection to 127.0.0.1:port; (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request(target))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def try_get(port: int, target: str) -> bool:
    try:
        return http_get(port, target, timeout=1.0)[0] == 200
    except OSError:
        return False


def ab(port: int, url: str, seconds: float, clients: int, cpu: str | None = None) -> float:
    """Requests/s of ab with keep-alive through the proxy at 127.0.0.1:port;
    with ``cpu``, ab runs pinned there (taskset -c)."""
    pinned = ["taskset", "-c", cpu] if cpu is not None else []
    argv = [*pinned, "ab", "-q", "-k", "-c", str(clients), "-t", str(seconds), "-n", "100000000",
            "-X", f"127.0.0.1:{port}", url]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    match = AB_RESULT.search(result.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", result.stdout)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", result.stdout)
    if not match or (failed and int(failed.group(1))) or non2xx:
        raise RuntimeError(f"ab through port {port} failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def download(port: int, url: str, started: threading.Event, result: dict) -> None:
    """GET url through the proxy; set ``started`` at the end of the response's
    head; ``result["complete"]``: a 200 whose body has its Content-Length."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request(url))
            data = b""
            while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
                data += chunk
            started.set()
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        result["complete"] = bool(head.startswith(b"HTTP/1.1 200") and length
                                  and len(body) == int(length.group(1)))
    except OSError as error:
        result["complete"] = False
        result["error"] = str(error)
    finally:
        started.set()
