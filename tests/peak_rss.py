"""``python peak_rss.py OUT COMMAND...``: run COMMAND, write its peak RSS to OUT.

A process the test runner starts itself cannot be measured this way: Linux
keeps the largest resident size a process ever had, and until its exec the
child shared the runner's memory, so the runner's size would be reported.
This small process starts the command instead, and writes its peak resident
memory in bytes to the file OUT; its exit code is the command's.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> int:
    out, *command = sys.argv[1:]
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    with open(out, "w") as report:
        report.write(str(usage.ru_maxrss * 1024))  # Linux counts KiB
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
