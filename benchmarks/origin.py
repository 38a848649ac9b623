"""The origin server of benchmarks/run: the same one for every system measured.

    python3 benchmarks/origin.py      # prints its port, then one line per request

GET /obj        1 KiB, cacheable for an hour (Squid serves it from memory after the
                first request: the throughput row measures the proxy, not this server)
GET /slow?seconds=S&chunks=N
                a download spread over S seconds, with Content-Length, so a cut
                transfer shows
Anything else   404. HTTP/1.1 with keep-alive; one thread per connection.
"""

from __future__ import annotations

import http.server
import socketserver
import sys
import time
import urllib.parse

OBJECT = b"x" * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):  # noqa: N802 - the base class's name
        url = urllib.parse.urlsplit(self.path)
        print(f"GET {url.path}", flush=True)
        if url.path == "/obj":
            self.answer(OBJECT, "public, max-age=3600")
        elif url.path == "/slow":
            query = urllib.parse.parse_qs(url.query)
            seconds = float(query.get("seconds", ["4"])[0])
            chunks = int(query.get("chunks", ["40"])[0])
            chunk = b"y" * 1024
            self.send_response(200)
            self.send_header("Content-Length", str(len(chunk) * chunks))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            for _ in range(chunks):
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(seconds / chunks)
        else:
            self.answer(b"not found\n", "no-store", 404)

    def answer(self, body: bytes, cache_control: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache_control)
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> None:
    server = Server(("0.0.0.0", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
