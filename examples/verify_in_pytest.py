"""A test to keep in your own project: the ONNX export computes what the PyTorch model computes.

    pytest examples/verify_in_pytest.py        (or: python examples/verify_in_pytest.py)

`inspector.verify` exports the model to a temporary ONNX file, runs PyTorch and onnxruntime on
your example input and on seeded random inputs (several seeds, batch sizes 1 and 3), and returns a
report that is truthy only when every output matched within atol + rtol * |torch|.
"""

import pytest
import torch
from inspector.models import ExerciseModel

import inspector


def trained_like(model):
    """A fresh BatchNorm has mean 0 and variance 1, nearly the identity: an export that lost it
    would still pass. A few batches in train mode give it real running statistics."""
    generator = torch.Generator().manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 128, 128, generator=generator) * 2 + 0.5)
    return model.eval()


def test_exercise_model_exports_faithfully():
    model = trained_like(ExerciseModel())
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))

    report = inspector.verify(model, x)

    # On failure pytest shows the report: per run and output, max abs/rel diff and mismatches.
    assert report, report


def test_tighter_tolerances_and_the_first_diverging_layer():
    model = trained_like(ExerciseModel())
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(2))

    report = inspector.verify(model, x, atol=1e-5, rtol=1e-4, seeds=2, localize=True)

    assert report, report
    assert report.first_divergence is None


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
