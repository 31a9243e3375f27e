"""The two graphs `inspector export` can write, as onnxscript / onnx_ir passes over the exported model.

`authored`: one node per layer as the model is written. The exporter's own optimizer would fold
BatchNormalization into Conv (its fuse_batchnorm rule); without any optimizer the graph keeps
Shape/Concat/Expand/CastLike plumbing. So we run constant folding (which turns shape arithmetic on
static dims into constants) and only the rewrite rules that remove no-op plumbing, none of the
fusions (BatchNorm into Conv, Pad into Conv, ReLU into Clip, MatMul+Add into Gemm, HardSwish).
Folding never transposes a weight: that would be a second copy of it (see _weight_transposes_kept).

`optimized` needs no pass of ours: it is `torch.onnx.export(optimize=True)` itself.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

FOLD_ROUNDS = 2  # a second round catches what the first one's rewrites made foldable


def _plumbing_rules():
    from onnxscript.rewriter.rules import common as rules

    return [
        rules.add_0_rule,
        rules.sub_0_rule,
        rules.mul_by_1_rule,
        rules.div_by_1_rule,
        rules.dropout_inference_rule,
        rules.dropout_zero_rule,
        rules.cast_cast_rule,
        rules.no_op_cast_rule,
        rules.no_op_expand_rule,
        rules.no_op_transpose_rule,
        rules.reshape_reshape_rule,
        rules.squeeze_reshape_1d_rule,
        rules.unsqueeze_unsqueeze_rule,
        rules.collapse_slice_rule,
        rules.collapse_slice2_rule,
        rules.cast_constant_of_shape_rule,
        rules.cast_constant_of_shape_without_value_rule,
        rules.materialize_reshape_shape_rule,
    ]


def authored_graph(model, parameters: AbstractSet[str] = frozenset()) -> None:
    """Remove shape plumbing in place, keeping every layer's node (BatchNormalization included).

    `parameters` names the model's own weights (its state_dict keys, which the exporter keeps as
    initializer names), so that they are told apart from constants the exporter made up.
    """
    import onnx_ir.passes.common as common_passes
    from onnxscript import optimizer, rewriter

    common_passes.InlinePass()(model)
    rules = _plumbing_rules()
    keep = _weight_transposes_kept(parameters)
    for _ in range(FOLD_ROUNDS):
        optimizer.fold_constants(model, should_fold=keep)
        rewriter.rewrite(model, pattern_rewrite_rules=rules)
    _drop_made_up_conv_bias(model, parameters)
    common_passes.RemoveUnusedNodesPass()(model)
    # Folded shapes become initializers, not Constant nodes that Netron would draw as layers.
    common_passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
    common_passes.RemoveUnusedOpsetsPass()(model)


def _weight_transposes_kept(parameters: AbstractSet[str]):
    """fold_constants' should_fold: a Transpose of one of the model's weights stays a node.

    Folding it (the exporter writes a Linear on 3-d inputs, a transformer's, as
    Transpose(weight) -> MatMul) makes a transposed copy of the weight, held next to the model's
    own for the rest of the export: a ViT's export peaked at 1.47x the bare exporter's. The node
    is what the bare exporter writes, and the weight keeps its own name in the file.
    """

    def should_fold(node) -> bool | None:
        if node.op_type == "Transpose" and node.domain in ("", "ai.onnx"):
            weight = node.inputs[0]
            if weight is not None and weight.name in parameters:
                return False
        return None

    return should_fold


def _drop_made_up_conv_bias(model, parameters: AbstractSet[str]) -> None:
    """A Conv written without bias comes out of the exporter with a bias of folded zeros.

    Netron would draw it as a `B` input, and deduplication would even give it the name of the next
    BatchNorm's (zero) bias. The layer as written has no bias, so the graph should not have one
    either; a real bias parameter stays, even when it happens to be zero.
    """
    import numpy as np

    for node in model.graph.all_nodes():
        if node.op_type != "Conv" or len(node.inputs) < 3 or node.inputs[2] is None:
            continue
        bias = node.inputs[2]
        if bias.name in parameters or bias.const_value is None:
            continue
        if not np.any(bias.const_value.numpy()):
            node.resize_inputs(2)
