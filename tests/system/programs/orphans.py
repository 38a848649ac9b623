"""Leave COUNT orphaned grandchildren behind, then exit.

Each grandchild waits until this process has exited (EOF on a pipe whose only
writer is this process), so it is re-parented to the init before it exits.
"""

import os
import sys

count = int(sys.argv[1])
read_end, write_end = os.pipe()
for _ in range(count):
    if os.fork() == 0:
        os.close(write_end)
        os.read(read_end, 1)
        os._exit(0)
print(f"left {count} orphans", flush=True)
