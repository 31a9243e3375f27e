"""The comparison rule and the report objects, on arrays we choose (no export needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inspector.errors import on_command_line
from inspector.onnx.compare import OutputDiff, compare_arrays, compare_outputs
from inspector.onnx.report import Run, VerifyReport

ATOL, RTOL = 1e-4, 1e-3


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_identical_arrays_match():
    x = _random((2, 3, 4))
    diff = compare_arrays("output", x, x.copy(), atol=ATOL, rtol=RTOL)
    assert diff
    assert (diff.name, diff.shape, diff.max_abs_diff, diff.max_rel_diff) == (
        "output",
        (2, 3, 4),
        0.0,
        0.0,
    )
    assert (diff.mean_abs_diff, diff.median_abs_diff, diff.p99_abs_diff, diff.mismatched) == (
        0.0,
        0.0,
        0.0,
        0,
    )
    assert diff.worst is None and diff.required_atol is None


def test_tolerance_is_atol_plus_rtol_times_the_torch_value():
    expected = _random((1000,), seed=1).astype(np.float64)
    allowed = ATOL + RTOL * np.abs(expected)
    actual = expected + 0.9 * allowed  # every element just inside
    outside = [3, 500, 999]
    actual[outside] = expected[outside] + 1.1 * allowed[outside]
    diff = compare_arrays("y", expected, actual, atol=ATOL, rtol=RTOL)
    assert not diff
    assert diff.mismatched == len(outside)
    assert diff.max_abs_diff == pytest.approx(np.max(np.abs(actual - expected)))


def test_a_zero_tolerance_catches_one_ulp():
    x = _random((64,), seed=2)
    y = x.copy()
    y[7] = np.nextafter(y[7], np.float32(np.inf))
    assert compare_arrays("y", x, y, atol=ATOL, rtol=RTOL)
    assert compare_arrays("y", x, y, atol=0.0, rtol=0.0).mismatched == 1


def test_nan_equals_nan_but_not_a_number():
    x = _random((4,), seed=3)
    x[1] = np.nan
    assert compare_arrays("y", x, x.copy())
    y = x.copy()
    y[1] = 0.0
    diff = compare_arrays("y", x, y)
    assert diff.mismatched == 1
    assert diff.max_abs_diff == math.inf
    z = x.copy()
    z[2] = np.nan
    assert compare_arrays("y", x, z).mismatched == 1


def test_infinities_match_only_with_the_same_sign():
    x = np.array([np.inf, -np.inf, 1.0], dtype=np.float32)
    assert compare_arrays("y", x, x.copy())
    flipped = np.array([np.inf, np.inf, 1.0], dtype=np.float32)
    assert compare_arrays("y", x, flipped).mismatched == 1
    finite = np.array([1e30, -np.inf, 1.0], dtype=np.float32)
    assert compare_arrays("y", x, finite).mismatched == 1


def test_a_shape_difference_is_a_mismatch_even_with_equal_values():
    x = _random((2, 3), seed=4)
    diff = compare_arrays("y", x, x.reshape(3, 2))
    assert not diff
    assert diff.shape == (2, 3)
    assert diff.mismatched == 6


def test_a_dtype_difference_is_a_mismatch():
    x = _random((5,), seed=5)
    assert not compare_arrays("y", x, x.astype(np.float64))


def test_integer_outputs_compare_exactly():
    x = np.array([1, 2, 3], dtype=np.int64)
    assert compare_arrays("idx", x, x.copy())
    assert compare_arrays("idx", x, np.array([1, 2, 4], dtype=np.int64)).mismatched == 1
    # An index is right or wrong: a large one off by one is no "relative" success.
    big = np.array([50_000, 7], dtype=np.int64)
    diff = compare_arrays("idx", big, np.array([50_001, 7], dtype=np.int64), rtol=0.1)
    assert diff.mismatched == 1 and diff.max_abs_diff == 1.0
    assert diff.worst.index == (0,) and (diff.worst.expected, diff.worst.actual) == (50_000, 50_001)


def test_relative_difference_ignores_values_below_atol():
    expected = np.array([1e-9, 2.0], dtype=np.float64)
    actual = np.array([2e-9, 2.001], dtype=np.float64)
    diff = compare_arrays("y", expected, actual)
    assert diff  # 1e-9 off a 1e-9 value is within atol
    assert diff.max_rel_diff == pytest.approx(0.0005)


def test_compare_outputs_notes_shape_and_count_differences():
    a, b = _random((2, 3), seed=6), _random((4,), seed=7)
    diffs, notes = compare_outputs(["out", "aux"], [a, b], [a], atol=ATOL, rtol=RTOL)
    assert [bool(d) for d in diffs] == [True, False]
    assert notes == ("aux: only PyTorch gives this output",)
    diffs, notes = compare_outputs(["out"], [a], [a.reshape(3, 2)], atol=ATOL, rtol=RTOL)
    assert not diffs[0]
    assert "float32[2, 3]" in notes[0] and "float32[3, 2]" in notes[0]


def _report(mismatched: int) -> VerifyReport:
    good = OutputDiff("output", (1, 64), 2e-7, 1e-5, 0)
    bad = OutputDiff("output", (3, 64), 0.5, 2.0, mismatched)
    runs = [Run(0, 1, (good,)), Run(0, 3, (bad,))]
    return VerifyReport("exercise_model", "exercise_model.onnx", ATOL, RTOL, runs)


def test_report_is_truthy_and_prints_passed_only_when_nothing_mismatched():
    passed, failed = _report(0), _report(7)
    assert passed and passed.passed
    assert not failed and not failed.passed
    assert str(passed).startswith("PASSED | exercise_model")
    text = str(failed)
    assert text.startswith("FAILED | exercise_model: 1 of 2 run(s) mismatch")
    assert "seed 0, batch 3" in text and "7 / 192" in text and "0.5" in text


def test_a_report_without_runs_does_not_pass():
    assert not VerifyReport("m", "m.onnx", ATOL, RTOL, [])


def test_report_json_has_the_contract_keys_and_is_strict_json():
    report = _report(3)
    report.runs.append(Run(1, 1, (OutputDiff("output", (1, 64), math.inf, math.inf, 64),)))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert {"passed", "atol", "rtol", "runs"} <= data.keys()
    assert "first_divergence" not in data  # only with --localize
    assert data["passed"] is False
    run = data["runs"][1]
    assert {"seed", "batch_size", "outputs"} <= run.keys()
    output = run["outputs"][0]
    assert {
        "name",
        "shape",
        "max_abs_diff",
        "mean_abs_diff",
        "median_abs_diff",
        "p99_abs_diff",
        "max_rel_diff",
        "mismatched",
        "expected_nan",
        "expected_inf",
        "actual_nan",
        "actual_inf",
    } <= output.keys()
    assert (output["name"], output["shape"], output["max_abs_diff"]) == ("output", [3, 64], 0.5)
    assert (output["max_rel_diff"], output["mismatched"]) == (2.0, 3)
    assert data["runs"][2]["outputs"][0]["max_abs_diff"] is None  # no finite difference


def test_inspector_verify_is_the_function_whatever_was_imported_before():
    import inspector
    import inspector.cli.verify  # the command's module: must not shadow the API's function
    import inspector.verification

    assert inspector.verify is inspector.verification.verify
    from inspector import verify

    assert callable(verify)
    with pytest.raises(inspector.InspectorError, match="not int"):
        inspector.verify(42)


def test_outputs_far_below_atol_are_flagged_as_a_check_that_cannot_fail():
    from inspector.onnx.compare import largest_value, scale_warnings

    tiny = np.full((2, 3), 2e-9, dtype=np.float32)
    tiny[0, 0] = np.nan  # NaN and inf do not count as a scale
    assert largest_value([tiny]) == pytest.approx(2e-9)
    (warning,) = scale_warnings([largest_value([tiny])], ATOL)
    assert "2e-09" in warning and "own scale" in warning
    assert scale_warnings([largest_value([_random((4,))])], ATOL) == []
    assert scale_warnings([largest_value([np.arange(3)])], ATOL) == []  # integers: no scale

    report = _report(0)
    report.warnings.append(warning)
    assert report  # a warning does not turn PASSED into FAILED ...
    assert f"warning: {warning}" in str(report)  # ... but it is said
    assert report.to_dict()["warnings"] == [warning]


# --- the rule at scale, and the statistics -------------------------------------------------------


def _huge(seed=10, size=3000):
    """Logits of about 1e9 (inception_v3 with init_weights=True), a few of them near zero."""
    values = _random((size,), seed=seed).astype(np.float64) * 1e9
    values[[5, 17]] = [3e3, -8e2]
    return values


def test_float32_rounding_at_1e9_passes_where_the_element_rule_alone_failed():
    expected = _huge()
    # Rounding of about 1e-6 of the output's scale, everywhere, near-zero elements included.
    noise = np.random.default_rng(11).uniform(-1, 1, expected.shape) * 1e-6 * 1e9
    actual = expected + noise
    elementwise = np.abs(actual - expected) > ATOL + RTOL * np.abs(expected)
    assert elementwise[[5, 17]].all()  # what inception_v3 showed: near-zero elements failed
    diff = compare_arrays("logits", expected, actual)
    assert diff, diff
    assert diff.peak == pytest.approx(np.abs(expected).max())
    assert not diff.own_scale


@pytest.mark.parametrize("fault", ["zeroed slice", "one element", "near-zero element"])
def test_a_real_fault_at_1e9_still_fails(fault):
    expected = _huge()
    actual = expected.copy()
    if fault == "zeroed slice":
        actual[100:200] = 0.0  # a zeroed channel
    elif fault == "one element":
        actual[42] *= 1.01  # one wrong weight, 1% off
    else:
        actual[5] += 1e-3 * np.abs(expected).max()  # far beyond rounding at this scale
    diff = compare_arrays("logits", expected, actual)
    assert not diff
    assert diff.mismatched >= 1


def test_trained_scale_outputs_keep_the_element_rule():
    """For logits of about 10, the peak share changes nothing: atol still rules near zero."""
    expected = _random((1000,), seed=12).astype(np.float64) * 3
    actual = expected.copy()
    actual[0] = expected[0] + 5 * ATOL + RTOL * abs(expected[0])
    assert compare_arrays("logits", expected, actual).mismatched == 1


def test_outputs_below_ten_atol_are_judged_at_their_own_scale():
    expected = _random((200,), seed=13).astype(np.float64) * 1e-9  # an untrained MobileNetV3
    rounding = expected * (1 + 1e-6)
    assert compare_arrays("y", expected, rounding)
    wrong = expected.copy()
    wrong[10] += 0.2 * np.abs(expected).max()  # invisible at atol 1e-4
    diff = compare_arrays("y", expected, wrong)
    assert not diff and diff.own_scale
    assert diff.atol == pytest.approx(RTOL * np.abs(expected).max())
    assert diff.required_atol is None  # no --atol would pass it: atol follows rtol here
    assert diff.required_rtol is not None
    assert compare_arrays("y", expected, wrong, rtol=diff.required_rtol * 1.001)
    # Weights (diff's business) may keep atol at any scale.
    assert compare_arrays("w", expected, wrong, own_scale=False)


def test_statistics_of_a_known_difference():
    expected = np.zeros(1000)
    actual = np.arange(1000) * 1e-6  # differences 0, 1e-6, ..., 999e-6
    actual[0] = np.nan
    expected[1] = np.inf
    actual[1] = np.inf
    diff = compare_arrays("y", expected, actual, atol=0.0, rtol=0.0)
    assert diff.max_abs_diff == math.inf  # NaN against 0
    assert (diff.expected_nan, diff.expected_inf, diff.actual_nan, diff.actual_inf) == (0, 1, 1, 1)
    base = np.full(1000, 2.0)
    finite = compare_arrays("y", base, base + np.arange(1000) * 1e-6, atol=1.005e-4, rtol=0.0)
    assert finite.mean_abs_diff == pytest.approx(499.5e-6)
    assert finite.median_abs_diff == pytest.approx(500e-6)
    assert finite.p99_abs_diff == pytest.approx(990e-6)
    assert finite.mismatched == 899  # d > atol: elements 101..999


def test_a_failure_names_its_worst_element_and_the_tolerance_that_would_pass():
    expected = _random((4, 5), seed=14)
    actual = expected.copy()
    actual[2, 3] += 0.05
    actual[0, 1] += 0.01
    diff = compare_arrays("y", expected, actual)
    assert diff.worst.index == (2, 3)
    assert diff.worst.expected == pytest.approx(float(expected[2, 3]))
    assert diff.worst.actual == pytest.approx(float(actual[2, 3]))
    assert compare_arrays("y", expected, actual, atol=diff.required_atol * 1.0001)
    assert not compare_arrays("y", expected, actual, atol=diff.required_atol * 0.99)
    assert compare_arrays("y", expected, actual, rtol=diff.required_rtol * 1.0001)
    assert not compare_arrays("y", expected, actual, rtol=diff.required_rtol * 0.99)
    report = VerifyReport("m", "m.onnx", ATOL, RTOL, [Run(0, 4, (diff,))])
    assert "worst element [2, 3]" in str(report) and "would pass with atol=0.048" in str(report)
    with on_command_line():  # the CLI prints it in its own terms
        assert "would pass with --atol 0.048 (at rtol 0.001) or --rtol " in str(report)


def test_blind_outputs_are_told_apart_from_useful_ones():
    from inspector.onnx.compare import blind_reason

    assert "every element is 0" in blind_reason(np.zeros((2, 10), np.float32), ATOL)
    assert "under 10 x atol" in blind_reason(_random((10,)) * 1e-9, ATOL)
    assert "no finite values" in blind_reason(np.full(3, np.nan, np.float32), ATOL)
    assert blind_reason(_random((10,)), ATOL) is None
    assert blind_reason(np.zeros(3, np.int64), ATOL) is None  # indices have no scale


def test_tolerances_per_output():
    from inspector.errors import InspectorError
    from inspector.onnx.tolerances import Tolerances, parse_tolerance

    assert parse_tolerance("1e-3") == (None, 1e-3)
    assert parse_tolerance("boxes=0.5") == ("boxes", 0.5)
    assert parse_tolerance("extra.key=2") == ("extra.key", 2.0)
    for bad in ("-1", "x=-1", "=1", "boxes=nan", "boxes"):
        with pytest.raises(ValueError):
            parse_tolerance(bad)
    tolerances = Tolerances.of([(None, 1e-3), ("boxes", 0.5)], {"scores": 0.0})
    assert tolerances.for_output("boxes") == (0.5, RTOL)
    assert tolerances.for_output("scores") == (1e-3, 0.0)
    assert tolerances.for_output("other") == (1e-3, RTOL)
    assert "boxes: atol 0.5" in tolerances.describe()
    tolerances.check_names(["boxes", "scores"], "m.onnx")
    with pytest.raises(InspectorError, match="has no output 'scores'.*did you mean scoress"):
        tolerances.check_names(["boxes", "scoress"], "m.onnx")
    with pytest.raises(InspectorError):
        Tolerances.of(-1.0, RTOL)
    diffs, _ = compare_outputs(
        ["boxes", "scores"],
        [np.array([100.0]), np.array([0.5])],
        [np.array([100.3]), np.array([0.503])],
        tolerances=tolerances,
    )
    assert [bool(d) for d in diffs] == [True, False]
    assert (diffs[0].atol, diffs[1].rtol) == (0.5, 0.0)


def test_nan_in_the_reference_is_a_warning_counted_in_json():
    from inspector.onnx.report import nonfinite_warnings

    x = _random((2, 3))
    x[0, 0] = np.nan
    run = Run(0, 2, (compare_arrays("y", x, x.copy()),))
    report = VerifyReport(
        "m", "m.onnx", ATOL, RTOL, [run], warnings=nonfinite_warnings([run], "PyTorch")
    )
    assert report  # NaN beside NaN agrees ...
    assert "PyTorch's own output 'y' holds 1 NaN" in str(report)  # ... but it is said
    data = report.to_dict()
    assert data["expected_nonfinite"] == {"y": {"nan": 1, "inf": 0, "runs": 1}}
    assert data["runs"][0]["outputs"][0]["expected_nan"] == 1


@pytest.mark.parametrize("use_cache", [False, True])
def test_one_verify_parses_its_tolerances_and_checks_its_export_options_once(
    monkeypatch, tmp_path, use_cache
):
    """The options are parsed into one object each and passed down, not unpacked and rebuilt,
    through the export cache too."""
    import torch

    import inspector
    from inspector.export.exporter import ExportOptions
    from inspector.onnx import tolerances

    parsed, checked = [], []
    real_split, real_check = tolerances._split, ExportOptions.check

    def split(value, default, option):
        parsed.append(option)
        return real_split(value, default, option)

    def check(options):
        checked.append(options)
        return real_check(options)

    monkeypatch.setattr(tolerances, "_split", split)
    monkeypatch.setattr(ExportOptions, "check", check)
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(tmp_path / "cache"))  # a miss: a real export
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    x = torch.randn(2, 4)
    assert inspector.verify(model, x, atol={"output": 1e-4}, seeds=1, use_cache=use_cache)
    assert sorted(parsed) == ["atol", "rtol"]
    assert len(checked) == 1
    parsed.clear(), checked.clear()
    from inspector.cli import main

    cache = [] if use_cache else ["--no-cache"]
    assert main(["verify", "linear", "--seeds", "1", "--atol", "1e-4", *cache]) == 0
    assert sorted(parsed) == ["atol", "rtol"]
    assert len(checked) == 1  # built once by the command line, passed down as it is
