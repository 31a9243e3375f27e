"""Exercise 3 (演習3): Convolution -> Batch Normalization -> ReLU -> Linear, output 32 x 64.

As the slide suggests for those with time to spare, the model lives in its own file and is
imported: `ExerciseModel` is the project's (models/lecture.py), and examples/models.py, beside
this script, hands it to the slide's `from models import ExerciseModel`. Install the project first
(`make install`, or `pip install -e .`); then it runs from any folder.

The slide fixes kernel_size=5 and stride=8 and leaves the padding to us. We chose padding=2:
(128 + 2*2 - 5) / 8 + 1 = 16.875, rounded down to 16, so the Linear layer takes 256 * 16 * 16
features. Check it with `inspector conv-shape --input 128 --kernel 5 --stride 8 --padding 2`,
and see every layer's output shape with `inspector summary exercise_model`.
"""

import torch

from models import ExerciseModel

if __name__ == "__main__":
    # 入力テンソル定義
    in_tensor = torch.ones((32, 3, 128, 128))

    # モデルインスタンス作成
    model = ExerciseModel()

    # 実行 & 結果確認
    out = model(in_tensor)
    print(repr(out.size()))
