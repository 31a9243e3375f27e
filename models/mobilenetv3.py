"""MobileNetV3 (Howard et al. 2019, "Searching for MobileNetV3"), the lecture's Figure 1.

The paper describes the network as a table, one row per block, and so does this file: each
`BlockConfig` below is one "bneck" row of Table 1 (large) or Table 2 (small). A block is

    1x1 conv (expand)  ->  depthwise kxk conv  ->  [Squeeze-and-Excitation]  ->  1x1 conv (project)

with a shortcut (x + block(x)) when the block keeps both the size and the channels. The layer names
and the weight initialization follow torchvision, so the parameter counts match its documented
figures: 2,542,856 (small) and 5,483,032 (large).
"""

from typing import NamedTuple

from torch import Tensor, nn

from ._registry import register_model

__all__ = [
    "LARGE_BLOCKS",
    "SMALL_BLOCKS",
    "BlockConfig",
    "ConvBNActivation",
    "InvertedResidual",
    "MobileNetV3",
    "SqueezeExcitation",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
]


class BlockConfig(NamedTuple):
    """One row of the paper's table."""

    in_channels: int
    kernel_size: int
    expanded_channels: int  # "exp size": channels after the 1x1 expansion
    out_channels: int
    use_se: bool  # Squeeze-and-Excitation after the depthwise conv
    activation: str  # "RE" (ReLU) or "HS" (Hardswish), as the paper writes them
    stride: int


# fmt: off
# Table 1: MobileNetV3-Large.
#            in  kernel  expanded  out   SE     act   stride
LARGE_BLOCKS = [
    BlockConfig(16,  3,  16,  16,  False, "RE", 1),
    BlockConfig(16,  3,  64,  24,  False, "RE", 2),
    BlockConfig(24,  3,  72,  24,  False, "RE", 1),
    BlockConfig(24,  5,  72,  40,  True,  "RE", 2),
    BlockConfig(40,  5, 120,  40,  True,  "RE", 1),
    BlockConfig(40,  5, 120,  40,  True,  "RE", 1),
    BlockConfig(40,  3, 240,  80,  False, "HS", 2),
    BlockConfig(80,  3, 200,  80,  False, "HS", 1),
    BlockConfig(80,  3, 184,  80,  False, "HS", 1),
    BlockConfig(80,  3, 184,  80,  False, "HS", 1),
    BlockConfig(80,  3, 480, 112,  True,  "HS", 1),
    BlockConfig(112, 3, 672, 112,  True,  "HS", 1),
    BlockConfig(112, 5, 672, 160,  True,  "HS", 2),
    BlockConfig(160, 5, 960, 160,  True,  "HS", 1),
    BlockConfig(160, 5, 960, 160,  True,  "HS", 1),
]

# Table 2: MobileNetV3-Small.
#            in  kernel  expanded  out   SE     act   stride
SMALL_BLOCKS = [
    BlockConfig(16,  3,  16,  16,  True,  "RE", 2),
    BlockConfig(16,  3,  72,  24,  False, "RE", 2),
    BlockConfig(24,  3,  88,  24,  False, "RE", 1),
    BlockConfig(24,  5,  96,  40,  True,  "HS", 2),
    BlockConfig(40,  5, 240,  40,  True,  "HS", 1),
    BlockConfig(40,  5, 240,  40,  True,  "HS", 1),
    BlockConfig(40,  5, 120,  48,  True,  "HS", 1),
    BlockConfig(48,  5, 144,  48,  True,  "HS", 1),
    BlockConfig(48,  5, 288,  96,  True,  "HS", 2),
    BlockConfig(96,  5, 576,  96,  True,  "HS", 1),
    BlockConfig(96,  5, 576,  96,  True,  "HS", 1),
]
# fmt: on

# The last rows of the tables: the width of the hidden classifier layer ("1x1 conv, NBN").
LARGE_LAST_CHANNELS = 1280
SMALL_LAST_CHANNELS = 1024

ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor` (hardware likes multiples of 8).

    Rounds to the nearest multiple, but never below `divisor` and never more than 10% down.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNActivation(nn.Sequential):
    """Conv2d (no bias: BatchNorm adds its own) -> BatchNorm2d -> activation (if any)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = None,
    ) -> None:
        padding = (kernel_size - 1) // 2  # "same" size at stride 1
        layers = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, eps=0.001, momentum=0.01),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Weigh each channel by a gate in [0, 1] computed from the whole feature map."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # squeeze: one number per channel
        self.fc1 = nn.Conv2d(channels, squeeze_channels, kernel_size=1)
        self.activation = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, kernel_size=1)
        self.scale_activation = nn.Hardsigmoid()  # the paper's cheap stand-in for the sigmoid

    def forward(self, x: Tensor) -> Tensor:
        scale = self.avgpool(x)
        scale = self.fc1(scale)
        scale = self.activation(scale)
        scale = self.fc2(scale)
        scale = self.scale_activation(scale)
        return x * scale  # excite: broadcast the gate over height and width


class InvertedResidual(nn.Module):
    """One "bneck" row of the table: expand -> depthwise -> [SE] -> project (+ shortcut)."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        activation = ACTIVATIONS[config.activation]
        self.use_residual = config.stride == 1 and config.in_channels == config.out_channels

        layers: list[nn.Module] = []
        if config.expanded_channels != config.in_channels:
            layers.append(
                ConvBNActivation(
                    config.in_channels, config.expanded_channels, 1, activation=activation
                )
            )
        layers.append(
            ConvBNActivation(
                config.expanded_channels,
                config.expanded_channels,
                config.kernel_size,
                stride=config.stride,
                groups=config.expanded_channels,
                activation=activation,
            )
        )
        if config.use_se:
            squeeze_channels = _make_divisible(config.expanded_channels // 4, 8)
            layers.append(SqueezeExcitation(config.expanded_channels, squeeze_channels))
        # The projection is linear (no activation): the paper's "linear bottleneck".
        layers.append(ConvBNActivation(config.expanded_channels, config.out_channels, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_residual:
            out = out + x
        return out


class MobileNetV3(nn.Module):
    """Stem conv -> the table's blocks -> 1x1 conv to 6x channels -> pooling -> classifier."""

    def __init__(
        self,
        blocks: list[BlockConfig],
        last_channels: int,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        blocks = [_scale_widths(config, width_mult) for config in blocks]

        first_channels = blocks[0].in_channels
        stem = ConvBNActivation(3, first_channels, 3, stride=2, activation=nn.Hardswish)
        last_conv_in = blocks[-1].out_channels
        last_conv_out = 6 * last_conv_in
        last_conv = ConvBNActivation(last_conv_in, last_conv_out, 1, activation=nn.Hardswish)
        self.features = nn.Sequential(stem, *[InvertedResidual(c) for c in blocks], last_conv)

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden = _make_divisible(last_channels * width_mult, 8)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv_out, hidden),
            nn.Hardswish(),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        x = self.classifier(x)
        return x

    def _init_weights(self) -> None:
        # As torchvision does: He init for convs (fan_out suits the depthwise convs), BatchNorm
        # starting as the identity, small random Linear weights.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)


def _scale_widths(config: BlockConfig, width_mult: float) -> BlockConfig:
    """The same row with every channel count multiplied by width_mult (kept divisible by 8)."""
    return config._replace(
        in_channels=_make_divisible(config.in_channels * width_mult, 8),
        expanded_channels=_make_divisible(config.expanded_channels * width_mult, 8),
        out_channels=_make_divisible(config.out_channels * width_mult, 8),
    )


@register_model(
    description="MobileNetV3-Small (Howard et al. 2019, Table 2), the lecture's Figure 1",
    input_shape=(1, 3, 224, 224),
)
def mobilenet_v3_small(num_classes: int = 1000, width_mult: float = 1.0) -> MobileNetV3:
    return MobileNetV3(
        SMALL_BLOCKS, SMALL_LAST_CHANNELS, num_classes=num_classes, width_mult=width_mult
    )


@register_model(
    description="MobileNetV3-Large (Howard et al. 2019, Table 1)", input_shape=(1, 3, 224, 224)
)
def mobilenet_v3_large(num_classes: int = 1000, width_mult: float = 1.0) -> MobileNetV3:
    return MobileNetV3(
        LARGE_BLOCKS, LARGE_LAST_CHANNELS, num_classes=num_classes, width_mult=width_mult
    )
