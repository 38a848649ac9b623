"""A stand-in for Squid that ignores TERM and INT: `-k parse` succeeds; otherwise
it writes the pid file and listens on the http_port of the -f config."""

import os
import signal
import socket
import sys

args = sys.argv[1:]
if "-k" in args:
    sys.exit(0)
config = args[args.index("-f") + 1]
port, pid_file = None, None
with open(config) as file:
    for line in file:
        words = line.split()
        if words[:1] == ["http_port"]:
            port = int(words[1].rsplit(":", 1)[-1])
        elif words[:1] == ["pid_filename"]:
            pid_file = words[1]
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen()
with open(pid_file, "w") as file:
    file.write(f"{os.getpid()}\n")
while True:
    signal.pause()
