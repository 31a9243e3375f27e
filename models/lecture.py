"""The models of "PyTorch 講座 4", written the way the slides write them.

Each class is what a student types after the lecture; each `@register_model` function below it
gives the class a name that `inspector` understands (`inspector summary exercise_model`).
"""

from torch import Tensor, nn

from ._registry import register_model

__all__ = [
    "ConvBNReLU",
    "ExerciseModel",
    "MyModel",
    "batchnorm",
    "conv",
    "conv_bn_relu",
    "exercise_model",
    "linear",
    "my_model",
    "relu",
]


class ConvBNReLU(nn.Module):
    """sample.py's MyModel: Convolution -> Batch Normalization -> ReLU, keeping the image size."""

    def __init__(self) -> None:
        super().__init__()

        self.conv = nn.Conv2d(in_channels=3, out_channels=64, kernel_size=3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(num_features=64)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        x = self.bn(x)
        x = self.relu(x)
        return x


class ExerciseModel(nn.Module):
    """Exercise 3: Conv -> BatchNorm -> ReLU -> Linear, turning 32x3x128x128 into 32x64.

    padding=2 is our choice: (128 + 2*2 - 5) / 8 + 1 = 16 (rounded down), the same 16x16 feature
    map as the slides' view.py example, so the Linear layer sees 256 * 16 * 16 features.
    """

    def __init__(self) -> None:
        super().__init__()

        self.conv = nn.Conv2d(in_channels=3, out_channels=256, kernel_size=5, stride=8, padding=2)
        self.bn = nn.BatchNorm2d(num_features=256)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(in_features=256 * 16 * 16, out_features=64)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        x = self.bn(x)
        x = self.relu(x)
        # The batch comes from the input (not a fixed 32), so any batch size works and the ONNX
        # export keeps a dynamic batch axis.
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x


class MyModel(nn.Module):
    """make_model.py: constructor arguments are stored, and forward returns its input."""

    def __init__(self, arg1: int, arg2: str) -> None:
        super().__init__()
        self.arg1 = arg1
        self.arg2 = arg2

    def forward(self, x: Tensor) -> Tensor:
        return x


@register_model(
    description="sample.py: Conv2d(3, 64, 3, padding=1) -> BatchNorm2d -> ReLU",
    input_shape=(1, 3, 128, 128),
)
def conv_bn_relu() -> nn.Module:
    return ConvBNReLU()


@register_model(
    description="Exercise 3: Conv2d(3, 256, 5, stride=8) -> BN -> ReLU -> Linear(64)",
    input_shape=(32, 3, 128, 128),
)
def exercise_model() -> nn.Module:
    return ExerciseModel()


@register_model(
    description="make_model.py: MyModel(arg1, arg2), forward returns its input", input_shape=(2, 3)
)
def my_model(arg1: int = 1234, arg2: str = "tus") -> nn.Module:
    return MyModel(arg1=arg1, arg2=arg2)


# The slides' single-layer demos, with the slides' arguments and example shapes.


@register_model(
    description="conv.py: nn.Conv2d(in_channels=3, out_channels=64, kernel_size=3)",
    input_shape=(16, 3, 256, 256),
)
def conv(
    in_channels: int = 3,
    out_channels: int = 64,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 0,
) -> nn.Module:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)


@register_model(
    description="linear.py: nn.Linear(in_features=1280, out_features=256)", input_shape=(32, 1280)
)
def linear(in_features: int = 1280, out_features: int = 256, bias: bool = True) -> nn.Module:
    return nn.Linear(in_features, out_features, bias=bias)


@register_model(
    description="batchnorm.py: nn.BatchNorm2d(num_features=256)", input_shape=(32, 256, 64, 64)
)
def batchnorm(num_features: int = 256, affine: bool = True) -> nn.Module:
    return nn.BatchNorm2d(num_features, affine=affine)


@register_model(
    description="relu.py: nn.ReLU() on the slide's 1x1x3x3 tensor", input_shape=(1, 1, 3, 3)
)
def relu() -> nn.Module:
    return nn.ReLU()
