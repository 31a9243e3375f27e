"""The `models` that exercise3.py imports, as the slide prints it: `from models import ExerciseModel`.

Python puts the script's own folder first on its import path, so this file answers that import from
any folder. The model itself is the project's (models/lecture.py), which installs as
`inspector.models` (`make install`, or `pip install -e .` in this clone): a top-level package
named `models` would shadow the `models` package of a user's own repository.
"""

from inspector.models import ConvBNReLU, ExerciseModel, MyModel

__all__ = ["ConvBNReLU", "ExerciseModel", "MyModel"]
