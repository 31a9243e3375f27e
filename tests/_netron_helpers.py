"""Shared by the view and render tests: small ONNX files made here, and the browser requirement."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from inspector.errors import InspectorError


def write_conv_bn_relu_onnx(folder: Path, external_data: bool = False) -> Path:
    """The lecture's Conv -> BatchNorm -> ReLU as an ONNX file (TorchScript exporter, BN kept).

    BatchNorm gets non-trivial running statistics so the file's weights are not the defaults.
    """
    import onnx
    import torch
    from inspector.models import create_model

    model = create_model("conv_bn_relu").eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        model.bn.running_mean.copy_(torch.randn(64, generator=generator))
        model.bn.running_var.copy_(torch.rand(64, generator=generator) + 0.5)
    path = folder / "conv_bn_relu.onnx"
    example = torch.randn(1, 3, 32, 32, generator=generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.EVAL,
            input_names=["image"],
            output_names=["features"],
        )
    if external_data:
        proto = onnx.load(str(path))
        onnx.save_model(
            proto,
            str(path),
            save_as_external_data=True,
            location=path.name + ".data",
            size_threshold=0,
        )
    return path


def require_browser() -> str:
    """Chromium's path, or skip the test saying why; with INSPECTOR_REQUIRE_BROWSER=1 (CI), fail."""
    from inspector.netron.render import find_chromium

    try:
        return find_chromium()
    except InspectorError as missing:
        if os.environ.get("INSPECTOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"INSPECTOR_REQUIRE_BROWSER=1 but the browser is missing: {missing}")
        pytest.skip(f"no browser for the rendering tests: {missing}")
