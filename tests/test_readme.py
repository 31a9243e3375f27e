"""The README as printed: its shell blocks run top to bottom in one empty folder, and every sample
output it shows is what the command prints.

How the README is read (keep to it when you add a section):

- A ```sh or ```bash block is commands only: one per line, a line ending in `\\` goes on, a
  `<<'EOF'` here-document runs to its `EOF` line. A ```console block holds commands after `$ `
  and, below each, lines it prints (the sample output). Other blocks (python, text) are not run.
- A command must exit 0, unless its own line says otherwise in a comment: `# exit 1` (a FAILED
  check, a difference), `# exit 2` (bad input).
- Every block runs, in the README's order, in the same empty folder, with this checkout's
  `.venv/bin` first on PATH, no PYTHONPATH and a private export cache: a command may only use
  files an earlier command made.
- An HTML comment on the line above a block changes that: `<!-- not run: REASON -->` (installs
  from the package index, runs inside the clone, serves until Ctrl-C; keep these few), or
  `<!-- browser -->` (needs Chromium: run only where Chromium is, like the other browser tests).
- A sample output matches when its lines appear in the real output (stdout, then stderr) in their
  order, consecutive unless a line `...` stands between them; `...` inside a line stands for any
  text. Both sides are normalised first: durations (`4.27 s`, `12 ms`) become `<time>` and hex
  digests of 32 or more digits `<hash>`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")  # a list item's block is indented
_MARKER = re.compile(r"^<!--\s*(not run|browser)\b:?\s*(.*?)\s*-->$")
_EXIT = re.compile(r"#.*\bexit (\d+)\b")
_HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?")
_SHELL = {"sh", "bash", "console"}
_MAX_NOT_RUN = 7  # not-run blocks are for what cannot run in a folder; keep them few


@dataclass
class Command:
    text: str
    line: int  # README line of its first line
    expected_exit: int = 0
    shown: list[str] = field(default_factory=list)  # sample output lines (console blocks)


@dataclass
class Block:
    language: str
    line: int  # README line of the opening fence
    section: str
    marker: str  # "" (run), "not run" or "browser"
    reason: str
    commands: list[Command]


def parse_readme(text: str) -> list[Block]:
    """Every sh/bash/console block of the README, with its commands and their sample outputs."""
    lines = text.splitlines()
    blocks: list[Block] = []
    section, index = "", 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#") and not line.startswith("#!"):
            section = line.lstrip("#").strip()
        fence = _FENCE.match(line)
        if not fence:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].lstrip().startswith("```"):
            end += 1
        indent, language = fence.groups()
        if language in _SHELL:
            marker, reason = _marker_above(lines, index)
            body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
            split = _console_commands if language == "console" else _script_commands
            blocks.append(
                Block(language, index + 1, section, marker, reason, split(body, index + 2))
            )
        index = end + 1
    return blocks


def _marker_above(lines: list[str], fence: int) -> tuple[str, str]:
    above = fence - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    found = _MARKER.match(lines[above].strip()) if above >= 0 else None
    return (found.group(1), found.group(2)) if found else ("", "")


def _script_commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    index = 0
    while index < len(body):
        start, line = index, body[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [line]
        while parts[-1].endswith("\\") and index < len(body):
            parts.append(body[index])
            index += 1
        expected = _expected_exit(parts)  # from the command's own lines, not a here-document's
        heredoc = _HEREDOC.search(line)
        if heredoc:
            while index < len(body):
                parts.append(body[index])
                index += 1
                if parts[-1].strip() == heredoc.group(1):
                    break
        commands.append(Command("\n".join(parts), first_line + start, expected))
    return commands


def _console_commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    index = 0
    while index < len(body):
        line = body[index]
        index += 1
        if line.startswith("$ "):
            parts = [line[2:]]
            while parts[-1].endswith("\\") and index < len(body):
                parts.append(body[index])
                index += 1
            commands.append(Command("\n".join(parts), first_line + index - len(parts)))
            commands[-1].expected_exit = _expected_exit(parts)
        elif commands:
            commands[-1].shown.append(line)
        elif line.strip():
            raise AssertionError(
                f"README line {first_line + index - 1}: output before any `$ ` line"
            )
    return commands


def _expected_exit(parts: list[str]) -> int:
    found = [int(m.group(1)) for part in parts if (m := _EXIT.search(part))]
    return found[-1] if found else 0


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b")
_DIGEST = re.compile(r"\b[0-9a-f]{32,}\b")


def normalise(line: str) -> str:
    line = _ANSI.sub("", line).rstrip()
    return _DIGEST.sub("<hash>", _DURATION.sub("<time>", line))


def _pattern(shown: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(piece) for piece in normalise(shown).split("...")))


def sample_mismatch(shown: list[str], printed: str) -> str | None:
    """Why the sample output is not in what the command printed, or None when it is."""
    real = [normalise(line) for line in printed.splitlines()]
    chunks: list[list[str]] = [[]]
    for line in shown:
        if line.strip() == "...":
            chunks.append([])
        elif line.strip():
            chunks[-1].append(line)
    position = 0
    for chunk in filter(None, chunks):
        patterns = [_pattern(line) for line in chunk]
        for start in range(position, len(real) - len(patterns) + 1):
            window = real[start : start + len(patterns)]
            if all(p.fullmatch(line) for p, line in zip(patterns, window, strict=True)):
                position = start + len(patterns)
                break
        else:
            return f"these lines are not in the output (in this order, after the lines before): {chunk}"
    return None


def _environment(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "COLUMNS", "LINES"}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["INSPECTOR_CACHE_DIR"] = str(cache)
    return env


def run_command(command: Command, block: Block, folder: Path, env: dict[str, str]) -> str | None:
    """Run one README command; None when it did what the README says, else why not."""
    done = subprocess.run(
        ["bash", "-c", command.text],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    where = f"README line {command.line} (the {block.language} block at line {block.line}, section '{block.section}'):\n    {command.text}\n"
    printed = done.stdout + done.stderr
    if done.returncode != command.expected_exit:
        tail = "\n      ".join(printed.strip().splitlines()[-15:])
        expectation = (
            ""
            if command.expected_exit
            else " (a command that should fail needs `# exit N` on its line)"
        )
        return f"{where}  exited {done.returncode}, the README says {command.expected_exit}{expectation}; it printed:\n      {tail}"
    why = sample_mismatch(command.shown, printed) if command.shown else None
    if why:
        real = "\n      ".join(printed.rstrip().splitlines()[:40])
        return f"{where}  the sample output is not what it prints: {why}\n    it printed:\n      {real}"
    return None


def _have_browser() -> bool:
    from inspector.errors import InspectorError
    from inspector.netron.render import find_chromium

    try:
        find_chromium()
    except InspectorError:
        return False
    return True


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> dict[str, list[str]]:
    """Run the README's blocks in order in one empty folder: the failures, by kind of block."""
    folder = tmp_path_factory.mktemp("readme-walkthrough")
    env = _environment(tmp_path_factory.mktemp("readme-export-cache"))
    browser = _have_browser()
    failures: dict[str, list[str]] = {"": [], "browser": []}
    for block in parse_readme(README.read_text(encoding="utf-8")):
        if block.marker == "not run" or (block.marker == "browser" and not browser):
            continue
        for command in block.commands:
            started = time.monotonic()
            failure = run_command(command, block, folder, env)
            # Shown with -s (and in a failure's captured output): what makes the walkthrough slow.
            print(f"{time.monotonic() - started:6.1f} s  README line {command.line}")
            if failure:
                failures[block.marker].append(failure)
    return failures


@pytest.mark.slow  # about 4 minutes of commands in a row: make test-slow and CI run it
def test_the_readme_runs_top_to_bottom_in_an_empty_folder(walkthrough):
    failures = walkthrough[""]
    assert not failures, f"{len(failures)} README command(s) fail as printed:\n\n" + "\n\n".join(
        failures
    )


@pytest.mark.slow
@pytest.mark.browser
def test_the_readme_drawings_run_where_chromium_is(walkthrough):
    from _netron_helpers import require_browser

    require_browser()
    failures = walkthrough["browser"]
    assert not failures, f"{len(failures)} README command(s) fail as printed:\n\n" + "\n\n".join(
        failures
    )


def test_every_shell_block_runs_or_says_why_not():
    blocks = parse_readme(README.read_text(encoding="utf-8"))
    skipped = [b for b in blocks if b.marker == "not run"]
    assert all(b.reason for b in skipped), [b.line for b in skipped if not b.reason]
    assert len(skipped) <= _MAX_NOT_RUN, [(b.line, b.reason) for b in skipped]
    run = [c for b in blocks if b.marker != "not run" for c in b.commands]
    assert len(run) >= 30 and any(c.shown for c in run) and any(c.expected_exit for c in run)


def test_the_readme_reader_splits_commands_and_samples():
    text = """# Title
```sh
inspector list   # the models
cat > a.py <<'EOF'
print("# exit 9 is not a comment here")
EOF
inspector verify a.py:Net \\
    --input 1x3   # exit 1: it fails
```

<!-- not run: installs from the package index -->
```sh
pip install torch-inspector
```
```console
$ inspector conv-shape --input 8 --kernel 3   # exit 0
output: 6
...
```
"""
    first, second, third, fourth = parse_readme(
        text + "- a list item:\n\n  ```sh\n  inspector list\n  ```\n"
    )
    assert [c.text.splitlines()[0] for c in first.commands] == [
        "inspector list   # the models",
        "cat > a.py <<'EOF'",
        "inspector verify a.py:Net \\",
    ]
    assert [c.expected_exit for c in first.commands] == [0, 0, 1]
    assert [c.line for c in first.commands] == [3, 4, 7]
    assert (second.marker, second.reason) == ("not run", "installs from the package index")
    [console] = third.commands
    assert console.shown == ["output: 6", "..."] and console.line == 16 and first.section == "Title"
    assert [c.text for c in fourth.commands] == ["inspector list"]


def test_a_sample_output_must_be_what_was_printed():
    printed = (
        "exported m -> m.onnx in 4.27 s\n  inputs: input\n  ops: Conv 1\nPASSED | ab12cd34"
        + "0" * 30
        + "\n"
    )
    assert sample_mismatch(["exported m -> m.onnx in 0.5 s", "  inputs: input"], printed) is None
    assert sample_mismatch(["...", "  ops: Conv 1", "PASSED | ..."], printed) is None
    assert sample_mismatch(["exported m -> m.onnx in 1 s", "...", "  ops: Conv 1"], printed) is None
    assert sample_mismatch(
        ["exported m -> m.onnx in 1 s", "  ops: Conv 1"], printed
    )  # not adjacent
    assert sample_mismatch(["  ops: Conv 2"], printed)
    assert sample_mismatch(["  ops: Conv 1", "  inputs: input"], printed)  # out of order
