"""--localize pairs a module's same-shaped outputs by what it returned there, not by the order the
ONNX values are made: a head returning (scores, boxes) once compared scores with boxes and blamed
a module that matched to 1e-7 (a false FAILED)."""

from __future__ import annotations

import torch
from _verify_helpers import export, nudge, tamper
from torch import nn

import inspector
from inspector.loading import loaded_from_module


class Head(nn.Module):
    """Two same-shaped outputs, as Faster R-CNN's rpn.head gives (scores, boxes)."""

    def __init__(self):
        super().__init__()
        self.scores = nn.Linear(8, 8)
        self.boxes = nn.Linear(8, 8)

    def forward(self, x):
        return self.scores(x), self.boxes(x)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.head = Head()

    def forward(self, x):
        scores, boxes = self.head(torch.relu(self.stem(x)))
        return scores.sigmoid(), boxes * 3


def _model():
    torch.manual_seed(0)
    return TwoHeads().eval(), torch.randn(4, 8, generator=torch.Generator().manual_seed(1))


def test_same_shaped_outputs_of_one_module_are_paired_right():
    model, x = _model()
    report = inspector.verify(model, x, localize=True, seeds=1)
    assert report, str(report)
    assert report.intermediates.compared >= 4 and not report.intermediates.diverging
    assert report.first_divergence is None


def test_a_real_fault_in_the_second_output_is_still_found(tmp_path):
    model, x = _model()
    loaded = loaded_from_module(model, (x,), {})
    good = export(loaded, tmp_path / "two.onnx")
    bad = tamper(good, tmp_path / "bad.onnx", "head.boxes.bias", nudge)
    report = inspector.verify(loaded, onnx=bad, localize=True, seeds=1)
    assert not report
    assert report.first_divergence.layer in ("head", "head.boxes")
    assert "head.scores" not in report.intermediates.diverging
