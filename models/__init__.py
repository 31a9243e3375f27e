"""Plain PyTorch models from the lecture, and the registry that names them."""

from . import lecture, mobilenetv3  # noqa: F401  (importing a module registers its models)
from ._registry import (
    ModelEntry,
    create_model,
    get_entry,
    list_models,
    recording_registrations,
    register_model,
)
from .lecture import ConvBNReLU, ExerciseModel, MyModel

__all__ = [
    "ConvBNReLU",
    "ExerciseModel",
    "ModelEntry",
    "MyModel",
    "create_model",
    "get_entry",
    "list_models",
    "recording_registrations",
    "register_model",
]
