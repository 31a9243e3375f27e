"""How much memory the system can still give: refusals made before allocating, not the OOM killer."""

from __future__ import annotations

import os


def available_memory() -> int | None:
    """Bytes the system can still give us (MemAvailable), or None where it cannot tell."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
