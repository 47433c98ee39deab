"""srlib: the models, losses, metrics and training loop of the deep image super-resolution course.

Images are torch float32 tensors, (N, 3, H, W) or (3, H, W), RGB, in [0, 1]; numpy HWC uint8 only at
file I/O. Importing srlib never trains, downloads or prints.

Example:
    >>> import torch, srlib
    >>> net = srlib.create_model("learned_upscaler_tiny", scale=4)
    >>> net(torch.rand(1, 3, 16, 16)).shape
    torch.Size([1, 3, 64, 64])
"""
from .budget import Budget, get_budget
from .models import count_parameters, create_model, list_models, model_entry, register_model
from .zoo import list_pretrained, load_checkpoint, load_pretrained, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "Budget", "get_budget", "count_parameters", "create_model", "list_models", "model_entry", "register_model",
    "list_pretrained", "load_checkpoint", "load_pretrained", "save_checkpoint", "__version__",
]
