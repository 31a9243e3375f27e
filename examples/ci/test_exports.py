"""Export checks for your own test suite, with inspector's pytest plugin (installed with inspector):

    pytest examples/ci/test_exports.py                       # compare with the kept snapshots
    pytest examples/ci/test_exports.py --inspector-update    # accept an architecture change
    pytest -n 2 examples/ci/test_exports.py                  # pytest-xdist: the export cache is shared

`onnx_parity` exports the model (through the export cache) and fails with the per-output diff
table when onnxruntime disagrees with PyTorch; `model_snapshot` compares the architecture (layers,
shapes, parameter counts, ONNX ops, inputs and outputs) with __snapshots__/test_exports/<test>.json.
"""

import pytest
import torch
from zoo import TinyClassifier, TokenMixer


def trained_like(model):
    """Seeded weights and BatchNorm statistics far from the identity (a fresh BatchNorm would let an
    export that lost it still pass)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.normal_(0.0, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
    return model.eval()


MODELS = {
    "tiny_classifier": (lambda: trained_like(TinyClassifier()), (2, 3, 32, 32)),
    "token_mixer": (lambda: trained_like(TokenMixer()), (2, 16, 32)),
}


def example(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches_pytorch(onnx_parity, name):
    build, shape = MODELS[name]
    onnx_parity(build(), example(shape), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("name", MODELS)
def test_architecture_is_unchanged(model_snapshot, name):
    build, shape = MODELS[name]
    model_snapshot(build(), example(shape))
