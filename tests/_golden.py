"""Golden files: compare printed output with a file in tests/golden/.

Run with INSPECTOR_UPDATE_GOLDEN=1 to (re)write the files after a deliberate change, then review the
diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def assert_golden(text: str, relative: str) -> None:
    path = GOLDEN / relative
    if os.environ.get("INSPECTOR_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with INSPECTOR_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"output differs from {path}"
