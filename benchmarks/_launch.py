"""Run one command; print its wall time, exit code and peak RSS as JSON (used by _common.run_child).

Linux carries a process's peak RSS across fork and exec, so a child started straight from a
benchmark that has torch loaded would report the benchmark's own 300 MB. This launcher is small,
and the command it starts inherits only its few megabytes.
"""

import json
import os
import subprocess
import sys
import time


def main() -> None:
    stderr_path, argv = sys.argv[1], sys.argv[2:]
    with open(stderr_path, "wb") as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    report = {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "code": child.returncode,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports kilobytes
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
