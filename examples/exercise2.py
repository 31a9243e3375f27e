"""Exercise 2 (演習2): fully connected layers, and view() for the appendix."""

import torch
from torch import nn

if __name__ == "__main__":
    # 1. 入力用のテンソル 32 x 1024 (埋める値は任意)
    _in = torch.ones((32, 1024))
    print("==== problem 1 ====")
    print(repr(_in.size()))

    # 2. 出力 32 x 256
    fc1 = nn.Linear(in_features=1024, out_features=256)
    out1 = fc1(_in)
    print("==== problem 2 ====")
    print(repr(out1.size()))

    # 3. 出力 32 x 2048
    fc2 = nn.Linear(in_features=1024, out_features=2048)
    out2 = fc2(_in)
    print("==== problem 3 ====")
    print(repr(out2.size()))

    # おまけ: 2 の出力 (32 x 256) を 32 x 16 x 16 に (256 = 16 * 16)
    print("==== appendix ====")
    print(repr(out1.view(32, 16, 16).size()))
