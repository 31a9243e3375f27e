"""Parameters shared by tests that run over the whole registry."""

from __future__ import annotations

import pytest
from inspector.models import list_models

# The MobileNetV3s take seconds per test: the whole suite checks them, `make test-fast` does not.
BIG = {"mobilenet_v3_small", "mobilenet_v3_large"}


def registered_models() -> list:
    """Every registered name, the big ones marked slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in list_models()]
