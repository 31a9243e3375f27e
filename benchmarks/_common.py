"""What every benchmark section needs: repeated timings with their spread, child processes with
their peak memory, and the machine and library versions the numbers were taken on."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSPECTOR = [sys.executable, "-m", "inspector"]  # run from ROOT, so this checkout's code runs
LIBRARIES = ("torch", "onnx", "onnxruntime", "onnxscript", "torchinfo")


@dataclass(frozen=True)
class Stats:
    """Repeated measurements of one figure (seconds, bytes, ...): median, min and max."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def ratio(self, baseline: Stats) -> float:
        return self.median / baseline.median

    def ms(self) -> str:
        """'123 ms (min 120, max 130)'."""
        return f"{self.median * 1e3:,.0f} ms (min {self.min * 1e3:,.0f}, max {self.max * 1e3:,.0f})"

    def seconds(self) -> str:
        return f"{self.median:,.2f} s (min {self.min:,.2f}, max {self.max:,.2f})"

    def mib(self) -> str:
        return f"{self.median / 2**20:,.0f} MiB (min {self.min / 2**20:,.0f}, max {self.max / 2**20:,.0f})"

    def to_dict(self) -> dict:
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "samples": list(self.samples),
        }


@dataclass(frozen=True)
class Timed:
    """Wall-clock and CPU seconds of the same runs. On a shared machine the CPU time (user +
    system, all threads) moves far less with other people's load than the wall time does."""

    wall: Stats
    cpu: Stats


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int


def run_child(argv: list[str], env: dict | None = None) -> ChildRun:
    """Run a command to completion: its wall time and its own peak RSS (see _launch.py).

    Fails loudly with the child's stderr when it exits non-zero: a benchmark of a failing command
    would time its error path.
    """
    with tempfile.NamedTemporaryFile(suffix=".stderr") as errors:
        launcher = [sys.executable, str(Path(__file__).with_name("_launch.py")), errors.name]
        done = subprocess.run([*launcher, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
        report = json.loads(done.stdout) if done.returncode == 0 else {"code": done.returncode}
        if report["code"] != 0:
            tail = Path(errors.name).read_text(errors="replace").strip().splitlines()[-3:]
            tail = tail or done.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(argv)} exited {report['code']}: {' | '.join(tail)}")
    return ChildRun(report["seconds"], report["cpu_seconds"], report["peak_rss_bytes"])


def run_json(argv: list[str]) -> dict:
    """Run a command that prints one JSON document (`--format json`) and parse it."""
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {' | '.join(tail)}")
    return json.loads(done.stdout)


def time_children(commands: dict[str, list[str]], runs: int, env=None) -> dict[str, list[ChildRun]]:
    """Run each command `runs` times, interleaved, so a burst of load hits every command alike."""
    results = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            results[name].append(run_child(argv, env))
    return results


def wall(runs: list[ChildRun]) -> Stats:
    return Stats(tuple(r.seconds for r in runs))


def timed(runs: list[ChildRun]) -> Timed:
    return Timed(wall(runs), Stats(tuple(r.cpu_seconds for r in runs)))


def peak(runs: list[ChildRun]) -> Stats:
    return Stats(tuple(float(r.peak_rss_bytes) for r in runs))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children: inspector checks ONNX files in a
    child process, whose CPU time.process_time() would leave out."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_calls(calls: dict, runs: int) -> dict[str, Timed]:
    """Time in-process calls `runs` times each, interleaved like time_children.

    The garbage of the previous call is collected before each one (untimed): an export leaves
    large reference cycles, and whichever call happened to trigger their collection would
    otherwise pay for the other side's garbage.
    """
    wall_s = {name: [] for name in calls}
    cpu_s = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            gc.collect()
            start, start_cpu = time.perf_counter(), cpu_seconds()
            call()
            cpu_s[name].append(cpu_seconds() - start_cpu)
            wall_s[name].append(time.perf_counter() - start)
    return {name: Timed(Stats(tuple(wall_s[name])), Stats(tuple(cpu_s[name]))) for name in calls}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(_meminfo("MemTotal") / 2**30, 1) if _meminfo("MemTotal") else None,
        "os": platform.platform(),
        "load_average": os.getloadavg(),
    }


def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"
