"""The model zoo: architectures by name, each with the right output head and loss.

Importing an architecture file registers its models, as in timm.

Example:
    >>> import models
    >>> models.list_models("resnet*")
    ['resnet20', 'resnet56']
    >>> model = models.create_model("mnist_cnn", head="logits")
    >>> loss = models.get_head("logits").loss()
    >>> trained = models.create_model("resnet20", pretrained="cifar10")  # shipped weights
"""

from models import airnet, fastnet, mlp, mnist_cnn, resnet_cifar  # noqa: F401  (registers)
from models.classifier import Classifier
from models.heads import HEADS, Head, check_head_for_task, get_head, heads_for_task
from models.losses import BinaryFocalLoss, CategoricalFocalLoss
from models.pretrained import PretrainedError, get_card, list_pretrained
from models.registry import create_model, get_entry, list_models, register_model

__all__ = [
    "HEADS",
    "BinaryFocalLoss",
    "CategoricalFocalLoss",
    "Classifier",
    "Head",
    "PretrainedError",
    "check_head_for_task",
    "create_model",
    "get_card",
    "get_entry",
    "get_head",
    "heads_for_task",
    "list_models",
    "list_pretrained",
    "register_model",
]
