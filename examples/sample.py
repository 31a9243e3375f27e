"""Slide "モデルの作成(基礎)" (env/sample.py): Convolution -> Batch Normalization -> ReLU.

The slide shows only the class; the main block is ours, so the file runs: it prints the shape of
the input and of the output. The same model is built into the toolkit as `conv_bn_relu`
(`inspector summary conv_bn_relu` shows every layer's output shape).
"""

import torch
from torch import nn


class MyModel(nn.Module):
    def __init__(self):
        super().__init__()

        self.conv = nn.Conv2d(in_channels=3, out_channels=64, kernel_size=3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(num_features=64)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.conv(x)
        x = self.bn(x)
        x = self.relu(x)
        return x


if __name__ == "__main__":
    # モデルインスタンス作成
    model = MyModel()

    # 実行 & 結果確認
    # padding=1 keeps the image size: (128 + 2*1 - 3) / 1 + 1 = 128; the channels go 3 -> 64.
    in_tensor = torch.ones((1, 3, 128, 128))
    out = model(in_tensor)
    print("==== before ====")
    print(repr(in_tensor.size()))
    print("==== after ====")
    print(repr(out.size()))
