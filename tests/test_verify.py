"""The comparison rule and the report objects, on arrays we choose (no export needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inspector.onnx.compare import OutputDiff, compare_arrays, compare_outputs
from inspector.onnx.report import Run, VerifyReport

ATOL, RTOL = 1e-4, 1e-3


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_identical_arrays_match():
    x = _random((2, 3, 4))
    diff = compare_arrays("output", x, x.copy(), atol=ATOL, rtol=RTOL)
    assert diff
    assert diff == OutputDiff("output", (2, 3, 4), 0.0, 0.0, 0)


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
    assert run["outputs"][0] == {
        "name": "output",
        "shape": [3, 64],
        "max_abs_diff": 0.5,
        "max_rel_diff": 2.0,
        "mismatched": 3,
    }
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
    assert "2e-09" in warning and "atol" in warning
    assert scale_warnings([largest_value([_random((4,))])], ATOL) == []
    assert scale_warnings([largest_value([np.arange(3)])], ATOL) == []  # integers: no scale

    report = _report(0)
    report.warnings.append(warning)
    assert report  # a warning does not turn PASSED into FAILED ...
    assert f"warning: {warning}" in str(report)  # ... but it is said
    assert report.to_dict()["warnings"] == [warning]
