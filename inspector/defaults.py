"""Every default and choice the commands share, in one place: the CLI's help and the Python API's
keyword defaults both read them from here, so they cannot drift apart."""

from __future__ import annotations

# verify: an element mismatches when |torch - ort| > ATOL + RTOL * |torch|. Meant for trained
# float32 models: onnxslim's figures, looser than Polygraphy's 1e-5 because onnxruntime fuses and
# reorders float32 arithmetic.
ATOL = 1e-4
RTOL = 1e-3
# ... where rtol measures against max(|torch|, PEAK_SHARE x the output's largest |value|): float32
# rounding follows the magnitudes a network computes with, so an element near zero among values of
# 1e9 carries errors of about 1e-6 of 1e9 (measured on nets 20-40 layers deep; see README).
PEAK_SHARE = 0.01
SEEDS = 3  # seeded random inputs per batch size

# diff: the batch sizes two models with a dynamic batch run at, to compare their outputs
DIFF_BATCH_SIZES = (1, 3)

# export
OPSET = 18
GRAPHS = ("authored", "optimized")
GRAPH = "authored"
EXPORTERS = ("dynamo", "torchscript")
EXPORTER = "dynamo"

# example inputs are drawn under this seed (models are built under inspector.models' BUILD_SEED)
INPUT_SEED = 0

# summary: torchinfo's own names for columns, row settings and modes (col_names=, row_settings=)
SUMMARY_DEPTH = 3
SUMMARY_COLUMNS = (
    "input_size",
    "output_size",
    "num_params",
    "params_percent",
    "kernel_size",
    "mult_adds",
    "trainable",
)
SUMMARY_ROW_SETTINGS = ("depth", "var_names", "ascii_only", "hide_recursive_layers")
SUMMARY_MODES = ("eval", "train")
SUMMARY_DEFAULT_COLUMNS = ("output_size", "num_params", "mult_adds")
SUMMARY_DEFAULT_ROW_SETTINGS = ("depth", "var_names")

# bench
BENCH_BATCH_SIZES = (1, 8)
BENCH_RUNS = 20
BENCH_WARMUP = 3

# render: the whole drawing (Chromium's start, Netron's layout, the export) must finish by then
RENDER_TIMEOUT = 120.0
# render and view: past this many nodes (where Netron switches to its large-graph layout) a graph is
# drawn collapsed to the deepest module depth that fits, unless --full
LARGE_GRAPH_NODES = 3000

# view
LOOPBACK = "127.0.0.1"
