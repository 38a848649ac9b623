"""Write COUNT lines of LENGTH bytes, each made of one letter, to stdout or stderr."""

import os
import sys

letter, length, count, stream = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = 1 if stream == "stdout" else 2
line = (letter * length + "\n").encode()
for _ in range(count):
    view = memoryview(line)
    while view:  # small, uneven writes, so lines arrive in pieces
        written = os.write(fd, view[:4000])
        view = view[written:]
