"""Exercise 1 (演習1): convolutions that give a wanted output size.

Every size below follows the lecture's formula O = (I + 2P - K) / S + 1, which PyTorch rounds down.
`inspector conv-shape --input 128 --kernel 3 --output 64` lists the stride and padding that work.
"""

import torch
from torch import nn

if __name__ == "__main__":
    # 1. 32 x 3 x 128 x 128 のテンソルを作成
    # (応用: torch.full((32, 3, 128, 128), 1.0) や torch.rand(32, 3, 128, 128) でも同じ形状)
    in_tensor = torch.ones((32, 3, 128, 128))

    # ---- kernel_size = 3 ----
    # 2. 出力 32 x 64 x 126 x 126
    # No padding, stride 1: (128 + 2*0 - 3) / 1 + 1 = 126.
    print("==== problem1 ====")
    conv1 = nn.Conv2d(in_channels=3, out_channels=64, kernel_size=3)
    print(repr(conv1(in_tensor).size()))

    # 3. 出力 32 x 256 x 64 x 64
    # Half the size needs stride 2. 128 + 2P - 3 is odd for every padding P, so no choice divides
    # exactly; padding=1 gives (128 + 2*1 - 3) / 2 + 1 = 64.5, rounded down to 64 (one row and
    # column of padding go unused). It is the smallest padding that reaches 64, and the usual
    # "half the kernel" padding of a stride-2 layer.
    print("==== problem2 ====")
    conv2 = nn.Conv2d(in_channels=3, out_channels=256, kernel_size=3, stride=2, padding=1)
    print(repr(conv2(in_tensor).size()))

    # ---- 4. kernel_size = 5 で同じ結果 ----
    # A kernel 2 pixels wider needs 1 more pixel of padding on each side:
    # (128 + 2*1 - 5) / 1 + 1 = 126.
    print("==== problem1 ====")
    conv3 = nn.Conv2d(in_channels=3, out_channels=64, kernel_size=5, padding=1)
    print(repr(conv3(in_tensor).size()))

    # (128 + 2*2 - 5) / 2 + 1 = 64.5 -> 64; padding=1 would give only 63.
    print("==== problem2 ====")
    conv4 = nn.Conv2d(in_channels=3, out_channels=256, kernel_size=5, stride=2, padding=2)
    print(repr(conv4(in_tensor).size()))
