"""check-all --jobs: `inspector check-all --no-cache` over the whole built-in registry as a child
process, with --jobs 1 and --jobs 2, interleaved run by run. Wall time is what counts here (the
point of --jobs is a shorter wait); CPU time, summed over the workers, shows what the parallelism
costs: each worker imports torch and builds the exporter's registry once.
Target on 2 cores: --jobs 2 at most 0.75x the wall time of --jobs 1.
"""

from __future__ import annotations

from _common import INSPECTOR, markdown_table, time_children, timed, verdict

TARGET = 0.75


def measure(runs: int, pattern: str | None = None) -> dict:
    base = [*INSPECTOR, "check-all", "--no-cache", *(["--pattern", pattern] if pattern else [])]
    children = time_children({f"--jobs {n}": [*base, "--jobs", str(n)] for n in (1, 2)}, runs)
    return {"pattern": pattern, "runs": {name: timed(runs) for name, runs in children.items()}}


def markdown(result: dict) -> tuple[str, dict]:
    runs = result["runs"]
    one, two = runs["--jobs 1"], runs["--jobs 2"]
    ratio = two.wall.ratio(one.wall)
    rows = [
        [f"`inspector check-all --no-cache {name}`", t.wall.seconds(), t.cpu.seconds()]
        for name, t in runs.items()
    ]
    which = f"models matching `{result['pattern']}`" if result["pattern"] else "the whole registry"
    text = "\n".join(
        [
            "## check-all --jobs",
            "",
            (__doc__ or "").split("\n", 1)[1].strip(),
            "",
            f"Models: {which}.",
            "",
            markdown_table(["command", "wall time", "CPU time (all processes)"], rows),
            "",
            f"--jobs 2 takes {ratio:.2f}x the wall time of --jobs 1 "
            f"(target {TARGET}x: {verdict(ratio <= TARGET)}).",
        ]
    )
    target = (f"`check-all --jobs 2` within {TARGET}x the wall time of --jobs 1", f"{ratio:.2f}x")
    return text, {"targets": [(*target, ratio <= TARGET)]}
