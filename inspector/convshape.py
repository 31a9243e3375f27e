"""A convolution's output size: the lecture's formula, computed exactly, and solved for stride/padding.

PyTorch's nn.Conv2d gives, along each axis,

    O = floor((I + 2P - D(K-1) - 1) / S) + 1

The lecture writes it as O = (I + 2P - K) / S + 1, which is the same for dilation D = 1 whenever the
division is exact; when it is not, PyTorch rounds down and the last rows/columns of the padded input
are never covered by the kernel. Pure Python on purpose: no torch import, so it answers at once.

    >>> conv_output_size(128, 3, stride=2, padding=1).output
    64
    >>> [s.to_dict() for s in solve_conv(128, 3, output=64)]
    [{'stride': 2, 'padding': 1, 'dilation': 1}]
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from .errors import InspectorError, option

AXIS_NAMES = ("height", "width")
AXIS_DROPPED = ("row", "column")
Size = int | tuple[int, int]  # one value for every axis, or (height, width)
DEFAULT_LIMIT = 20  # solutions listed (simplest first); the total is always counted
MAX_SEARCHED_PADDINGS = 10_000  # a free padding is searched one value at a time


# ---- one axis -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisShape:
    """One axis of a convolution: its arguments and PyTorch's output size."""

    input: int
    kernel: int
    stride: int
    padding: int
    dilation: int

    @property
    def span(self) -> int:
        """Pixels the (dilated) kernel covers: D(K-1) + 1."""
        return self.dilation * (self.kernel - 1) + 1

    @property
    def covered(self) -> int:
        """I + 2P - D(K-1) - 1: how far the kernel's first pixel travels over the padded input."""
        return self.input + 2 * self.padding - self.span

    @property
    def output(self) -> int:
        return self.covered // self.stride + 1

    @property
    def dropped(self) -> int:
        """Rows (or columns) at the end of the padded input that the kernel never reaches."""
        return self.covered % self.stride

    def full_formula(self) -> str:
        i, p, k, s, d = self.input, self.padding, self.kernel, self.stride, self.dilation
        return f"floor(({i} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {self.output}"

    def lecture_formula(self) -> str:
        i, p, s = self.input, self.padding, self.stride
        text = f"({i} + 2*{p} - {self.span}) / {s} + 1 = {self._lecture_value()}"
        if self.dilation != 1:
            text += f"  (K = {self.span}: the kernel {self.kernel} dilated by {self.dilation})"
        return text

    def _lecture_value(self) -> str:
        """(I + 2P - K) / S + 1 without rounding down: 64.5, 16.875, 2.333... (integers stay exact)."""
        if self.dropped == 0:
            return str(self.output)
        digits, rest = divmod(self.dropped * 1000, self.stride)
        decimals = f"{digits:03d}..." if rest else f"{digits:03d}".rstrip("0")
        return f"{self.output}.{decimals}"


def _check_axis(axis: AxisShape, name: str) -> AxisShape:
    padded = axis.input + 2 * axis.padding
    if axis.span > padded:
        spans = "" if axis.span == axis.kernel else f" (dilated to {axis.span})"
        raise InspectorError(
            f"{name}kernel {axis.kernel}{spans} is larger than the padded input "
            f"{padded} = {axis.input} + 2*{axis.padding}"
        )
    return axis


# ---- arguments: int or (H, W) ---------------------------------------------------------------


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise InspectorError(f"{name} must be one integer or an H,W pair, got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise InspectorError(f"{name} must be an integer, got {v!r}")
        if v < minimum:
            kind = "a positive integer" if minimum == 1 else "an integer >= 0"
            raise InspectorError(f"{name} must be {kind}, got {v}")
    return values


def _is_pair(*values) -> bool:
    return any(isinstance(v, (tuple, list)) for v in values)


def _axes(*, input, kernel, stride, padding, dilation) -> tuple[tuple[int, ...], ...]:
    """Validated arguments, one tuple per axis (height, width)."""
    columns = (
        _pair(input, "input", 1),
        _pair(kernel, "kernel", 1),
        _pair(stride, "stride", 1),
        _pair(padding, "padding", 0),
        _pair(dilation, "dilation", 1),
    )
    return tuple(zip(*columns, strict=True))


def parse_size(text: str, option: str):
    """'128' -> 128, '128,96' -> (128, 96); anything else is a user error naming the option."""
    parts = [part.strip() for part in str(text).split(",")]
    try:
        values = [int(part) for part in parts]
    except ValueError as error:
        raise InspectorError(f"{option} {text!r} is not an integer or an H,W pair") from error
    if len(values) not in (1, 2):
        raise InspectorError(f"{option} {text!r}: give one integer or an H,W pair")
    return values[0] if len(values) == 1 else tuple(values)


# ---- compute --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvShape:
    """The output size of one convolution; `axes` holds one AxisShape, or two for H,W."""

    axes: tuple[AxisShape, ...]

    @property
    def output(self):
        sizes = [axis.output for axis in self.axes]
        return sizes[0] if len(sizes) == 1 else sizes

    def to_dict(self) -> dict:
        return {"output": self.output}

    def __str__(self) -> str:
        if len(self.axes) == 1:
            return _describe(self.axes[0], "output: ", dropped=("row", "column"))
        size = "x".join(str(axis.output) for axis in self.axes)
        parts = [f"output: {size} (height x width)"]
        for name, noun, axis in zip(AXIS_NAMES, AXIS_DROPPED, self.axes, strict=True):
            parts.append(_describe(axis, f"{name}: ", dropped=(noun,)))
        return "\n".join(parts)


def _describe(axis: AxisShape, label: str, dropped: tuple[str, ...]) -> str:
    lines = [
        f"{label}{axis.output}",
        f"  PyTorch:  {axis.full_formula()}",
        f"  lecture:  {axis.lecture_formula()}",
    ]
    if axis.dropped:
        what = _counted(axis.dropped, dropped)
        lines.append(
            f"  not exact: {axis.covered} is not a multiple of stride {axis.stride}; PyTorch rounds "
            f"down, dropping the last {what} of the padded input"
        )
    return "\n".join(lines)


def _counted(count: int, nouns) -> str:
    """3, ("row", "column") -> "3 rows and 3 columns"."""
    return " and ".join(f"{count} {noun}{'s' * (count > 1)}" for noun in nouns)


def conv_output_size(
    input: Size, kernel: Size, stride: Size = 1, padding: Size = 0, dilation: Size = 1
) -> ConvShape:
    """Output size of nn.Conv2d (or Conv1d) along each axis; each argument is an int or (H, W).

    Args:
        input: the input size.
        kernel: the kernel size.
        stride: the stride.
        padding: the zero padding on each side.
        dilation: the kernel's dilation.

    Returns:
        A ConvShape: the output size per axis, and the rows or columns the kernel never covers.

    Raises:
        InspectorError: a size that is not a positive integer, or a kernel larger than the input.
    """
    rows = _axes(input=input, kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    pair = _is_pair(input, kernel, stride, padding, dilation)
    axes = tuple(
        _check_axis(AxisShape(*row), f"{name}: " if pair else "")
        for name, row in zip(AXIS_NAMES, rows, strict=True)
    )
    return ConvShape(axes if pair else axes[:1])


# ---- solve ----------------------------------------------------------------------------------
#
# "Every (stride, padding) up to sensible bounds": a free padding goes from 0 to D(K-1), the full
# padding, because more would add border outputs that see nothing but padding; a free stride goes
# from 1 to the number of kernel positions, I + 2P - D(K-1), because every larger stride gives the
# same single output. "Simplest first": the smallest stride, then the smallest padding (for H,W
# pairs: the smallest largest stride, then the smallest sum of strides, then the same for padding).


@dataclass(frozen=True)
class ConvSetting:
    """One answer of solve_conv: a stride, padding and dilation (ints, or [H, W] lists)."""

    axes: tuple[AxisShape, ...]

    def _value(self, attr: str):
        values = [getattr(axis, attr) for axis in self.axes]
        return values[0] if len(values) == 1 else values

    @property
    def stride(self):
        return self._value("stride")

    @property
    def padding(self):
        return self._value("padding")

    @property
    def dilation(self):
        return self._value("dilation")

    def to_dict(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}

    def __str__(self) -> str:
        if len(self.axes) > 1:
            return f"stride {_csv(self.stride)}, padding {_csv(self.padding)}"
        axis = self.axes[0]
        text = f"stride {axis.stride}, padding {axis.padding}:  {axis.lecture_formula()}"
        if axis.dropped:
            text += f" -> {axis.output}, dropping {_counted(axis.dropped, AXIS_DROPPED)}"
        return text


def _csv(values) -> str:
    return ",".join(map(str, values)) if isinstance(values, list) else str(values)


def _simplicity(setting: ConvSetting) -> tuple:
    strides = [axis.stride for axis in setting.axes]
    paddings = [axis.padding for axis in setting.axes]
    return (max(strides), sum(strides), max(paddings), sum(paddings), strides, paddings)


@dataclass(frozen=True)
class ConvSolutions:
    """Every stride and padding that give the wanted output, simplest first (at most `limit`)."""

    question: str
    settings: tuple[ConvSetting, ...]
    total: int

    def __iter__(self):
        return iter(self.settings)

    def __len__(self) -> int:
        return len(self.settings)

    def to_dict(self) -> dict:
        return {"solutions": [s.to_dict() for s in self.settings], "total": self.total}

    def __str__(self) -> str:
        count = f"{self.total} solution{'s' * (self.total != 1)}"
        lines = [f"{self.question}: {count}, simplest first (smallest stride, then padding)"]
        lines += [f"  {setting}" for setting in self.settings]
        if self.total > len(self.settings):
            lines.append(
                f"  ... and {self.total - len(self.settings)} more; give --stride or --padding "
                "to narrow the list"
            )
        return "\n".join(lines)


def _strides_giving(covered: int, target: int) -> range:
    """Strides S with covered // S + 1 == target, up to covered + 1 (larger ones repeat it)."""
    if target == 1:
        return range(covered + 1, covered + 2)
    return range(covered // target + 1, covered // (target - 1) + 1)


def _axis_candidates(row, target, stride, padding) -> list[tuple[int, range | list[int]]]:
    """(padding, strides) pairs of one axis that give `target`; empty ranges where none do."""
    size, kernel, dilation = row
    span = dilation * (kernel - 1) + 1
    if padding is None and span > MAX_SEARCHED_PADDINGS:
        raise InspectorError(
            f"kernel {kernel} spans {span} pixels: too many paddings to search; give "
            + option("--padding", "padding")
        )
    paddings = [padding] if padding is not None else range(span)  # 0 .. D(K-1)
    candidates: list[tuple[int, range | list[int]]] = []
    strides: range | list[int]
    for pad in paddings:
        covered = size + 2 * pad - span
        if covered < 0:
            continue
        if stride is None:
            strides = _strides_giving(covered, target)
        else:
            strides = [stride] if covered // stride + 1 == target else []
        candidates.append((pad, strides))
    return candidates


def _count(strides: range | list[int]) -> int:
    # len() of a range overflows past sys.maxsize; sizes are not bounded above
    return len(strides) if isinstance(strides, list) else max(0, strides.stop - strides.start)


def _simplest(candidates, limit: int) -> list[tuple[int, int]]:
    """The first `limit` (stride, padding) of one axis in (stride, padding) order."""
    streams = [zip(strides, itertools.repeat(pad)) for pad, strides in candidates]
    return list(itertools.islice(heapq.merge(*streams), limit))


def solve_conv(
    input: Size,
    kernel: Size,
    output: Size,
    stride: Size | None = None,
    padding: Size | None = None,
    dilation: Size = 1,
    limit: int | None = DEFAULT_LIMIT,
) -> ConvSolutions:
    """Every stride and padding (within the bounds above) that give `output`, simplest first.

    Args:
        input: the input size, an int or an (H, W) pair like every size here.
        kernel: the kernel size.
        output: the output size wanted.
        stride: kept fixed when given; searched when None.
        padding: kept fixed when given; searched when None.
        dilation: the kernel's dilation.
        limit: at most this many settings are listed (None: all); `.total` counts them all.

    Returns:
        ConvSolutions: the settings found, simplest first, and how many there are.

    Raises:
        InspectorError: no setting reaches `output`.
    """
    pair = _is_pair(input, kernel, output, stride, padding, dilation)
    rows = _axes(
        input=input,
        kernel=kernel,
        stride=1 if stride is None else stride,
        padding=0 if padding is None else padding,
        dilation=dilation,
    )[: 2 if pair else 1]
    targets = _pair(output, "output", 1)
    strides = (None, None) if stride is None else _pair(stride, "stride", 1)
    paddings = (None, None) if padding is None else _pair(padding, "padding", 0)
    per_axis, total = [], 1
    for index, (size, kernel_size, _, _, dil) in enumerate(rows):
        label = f"{AXIS_NAMES[index]}: " if pair else ""
        shapes, count = _solve_axis(
            (size, kernel_size, dil), targets[index], strides[index], paddings[index], limit, label
        )
        per_axis.append(shapes)
        total *= count
    settings = sorted((ConvSetting(axes) for axes in itertools.product(*per_axis)), key=_simplicity)
    question = _question(rows, targets, stride, padding)
    return ConvSolutions(question, tuple(settings[:limit]), total)


def _solve_axis(row, target, stride, padding, limit, label) -> tuple[list[AxisShape], int]:
    """The simplest settings of one axis (at most `limit`) and how many there are in all."""
    candidates = _axis_candidates(row, target, stride, padding)
    count = sum(_count(found) for _, found in candidates)
    if count == 0:
        raise InspectorError(label + _unreachable(row, target, stride, padding))
    size, kernel, dilation = row
    simplest = _simplest(candidates, limit)
    return [AxisShape(size, kernel, s, p, dilation) for s, p in simplest], count


def _question(rows, targets, stride, padding) -> str:
    def joined(values):
        return ",".join(map(str, values))

    inputs, kernels, dilations = (joined(row[i] for row in rows) for i in (0, 1, 4))
    wanted = joined(targets[: len(rows)])
    fixed = "".join(
        f", {name} {joined(value) if isinstance(value, (tuple, list)) else value}"
        for name, value in (("stride", stride), ("padding", padding))
        if value is not None
    )
    return (
        f"output {wanted} from input {inputs} with kernel {kernels}{fixed} (dilation {dilations})"
    )


def _unreachable(row, target, stride, padding) -> str:
    """Why no setting gives `target` on this axis, with the nearest outputs that can be had."""
    size, kernel, dilation = row
    span = dilation * (kernel - 1) + 1
    fixed = "".join(
        f", {name} {value}"
        for name, value in (("stride", stride), ("padding", padding))
        if value is not None
    )
    searched = "" if padding is not None else f" (padding 0 to {span - 1})"
    head = f"no stride and padding give output {target} from input {size} with kernel {kernel}{fixed}{searched}"
    reached = _nearby_outputs(size, span, target, stride, padding)
    if not reached:
        return f"{head}: the kernel spans {span} pixels, more than the padded input"
    # the closest output on each side; among equal outputs, the smallest stride and padding
    above = min((r for r in reached if r[0] > target), default=None)
    below = max((r for r in reached if r[0] < target), key=_largest_simplest, default=None)
    nearest = [f"{o} (stride {s}, padding {p})" for o, s, p in filter(None, (above, below))]
    return f"{head}; nearest: {' and '.join(nearest)}"


def _nearby_outputs(size, span, target, stride, padding) -> list[tuple[int, int, int]]:
    """(output, stride, padding) just above and just below `target`, for every padding searched."""
    reached = []
    for pad in [padding] if padding is not None else range(span):
        covered = size + 2 * pad - span
        if covered < 0:
            continue
        if stride is not None:
            tries = [stride]
        else:  # the output falls as the stride grows: the last stride above target, and the next
            last_above = covered // (target - 1) if target > 1 else 0
            tries = [s for s in (last_above, last_above + 1) if 1 <= s <= covered + 1]
        reached += [(covered // s + 1, s, pad) for s in tries]
    return reached


def _largest_simplest(reached: tuple[int, int, int]) -> tuple[int, int, int]:
    output, stride, padding = reached
    return (output, -stride, -padding)
