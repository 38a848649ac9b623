#!/usr/bin/env python3
"""The origin server the acceptance suites send their proxied requests to.

It runs on the host, outside any container, with the host's Python: the suites
test the image, so nothing they rely on should come from the image itself.
Containers reach it through the gateway of the test network (helpers.bash maps
origin.test and blocked.test to that address with --add-host).

Endpoints (any Host header is accepted):
  /hello[...]                 200, a short text body echoing the path, Host and Via
  /slow?seconds=S&chunks=N    200, N chunks of 1024 bytes spread over S seconds
                              (Content-Length is sent first, so a client knows
                              whether it got the whole body)
  /cacheable[...]             200, like /hello but cacheable for an hour
                              (Cache-Control: max-age, Last-Modified), so a proxy
                              with a cache answers the next request itself
  anything else               404

Every request is appended to --log as one line "<scheme> <method> <path> host=<Host>
via=<Via>" as soon as its headers are read, so a test can wait for "the slow download
has started" without sleeping. With --tls-cert/--tls-key it also serves HTTPS.
The chosen ports (bind port 0 = let the kernel choose) are written to --port-file
("http=PORT" and "https=PORT" lines) once both sockets listen.
"""

import argparse
import http.server
import os
import ssl
import sys
import threading
import time
import urllib.parse

CHUNK = 1024


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "CephaloProxyTestOrigin/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        """Silence the default stderr access log; --log has what the tests need."""

    def _record(self) -> None:
        line = (f"{self.server.scheme} {self.command} {self.path} "
                f"host={self.headers.get('Host', '')} via={self.headers.get('Via', '')}\n")
        with self.server.log_lock, open(self.server.log_path, "a", encoding="utf-8") as log:
            log.write(line)

    def _send(self, status: int, body: bytes, cacheable: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if cacheable:
            self.send_header("Cache-Control", "public, max-age=3600")
            self.send_header("Last-Modified", self.date_time_string(time.time() - 86400))
        else:
            self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._record()
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith(("/hello", "/cacheable")):
            body = (f"hello from the test origin\n"
                    f"scheme={self.server.scheme}\n"
                    f"path={self.path}\n"
                    f"host={self.headers.get('Host', '')}\n"
                    f"via={self.headers.get('Via', '')}\n").encode()
            self._send(200, body, cacheable=url.path.startswith("/cacheable"))
        elif url.path == "/slow":
            self._slow(urllib.parse.parse_qs(url.query))
        else:
            self._send(404, b"not found\n")

    def _slow(self, query: dict) -> None:
        seconds = float(query.get("seconds", ["3"])[0])
        chunks = max(1, int(query.get("chunks", ["20"])[0]))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(chunks * CHUNK))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        pause = seconds / chunks
        try:
            for _ in range(chunks):
                self.wfile.write(b"x" * CHUNK)
                self.wfile.flush()
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, scheme, log_path, log_lock, tls_context=None):
        super().__init__(address, Handler)
        self.scheme = scheme
        self.log_path = log_path
        self.log_lock = log_lock
        self.tls_context = tls_context

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the request's thread: a client
        # that never finishes its handshake cannot block the accept loop.
        if self.tls_context is not None:
            request.settimeout(30)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        """Clients that hang up early (a stopped proxy) are expected here."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--https-port", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()

    lock = threading.Lock()
    servers = [Server((args.bind, args.http_port), "http", args.log, lock)]
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        servers.append(Server((args.bind, args.https_port), "https", args.log, lock, context))

    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    temporary = f"{args.port_file}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        for server in servers:
            file.write(f"{server.scheme}={server.server_address[1]}\n")
    os.replace(temporary, args.port_file)  # appears whole: the helper polls for it
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
