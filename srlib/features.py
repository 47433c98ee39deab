"""VGG19 feature networks for perceptual, texture and feature-GAN losses, without torchvision.

Paper: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 [simonyan2015vgg]. The perceptual loss that compares images in a VGG feature
space is Johnson et al., ECCV 2016 [johnson2016perceptual]; SRGAN, EnhanceNet, ESRGAN and SRFeat all
use VGG19 features.

Read top-down:

1. **The layer table**: ``VGG19_LAYERS`` names every module of torchvision's ``vgg19().features``
   (``conv1_1``, ``relu1_1``, ..., ``pool5``); the position in the tuple is the index ``N`` of the
   ``features.N.weight`` keys of a torchvision state dict.
2. **VGG19**: the whole network in torchvision's layout (``features``, ``avgpool``, ``classifier``;
   143,667,240 parameters), so ``VGG19().load_state_dict(torch.load("vgg19-dcbb9e9d.pth"))`` works
   unchanged with the usual pretrained file.
3. **Loading weights**: :func:`load_vgg19_weights` reads a path or a state dict, keeps the keys the
   (possibly truncated) network needs, and refuses another architecture with a message saying what
   was found (VGG16, VGG19-BN, a missing layer).
4. **VGGFeatureExtractor**: the frozen front of VGG19, cut after the last requested layer, with
   ImageNet input normalisation as a buffer; returns ``{layer name: features}``.

Weights. Pretrained VGG weights cannot be downloaded here. Three sources, always recorded in
``extractor.weights_source`` so that no figure passes random features off as VGG:

* ``weights=None``: **random** weights (Kaiming-normal as torchvision, from a seeded generator).
  Random conv features still measure local texture statistics, but they are not VGG.
* ``weights="selfsup"``: the extractor this project trains itself on the bundled images
  (``scripts/train_feature_extractor.py`` -> ``srlib/weights/vgg19_selfsup.pt``, layers up to
  ``relu3_4`` by default; see that script for the task and why it was chosen).
* ``weights=path`` or a state dict: real weights in torchvision's format (``features.N.weight``),
  e.g. torchvision's ``vgg19-dcbb9e9d.pth``, when a reader has them.

Images are float32 (N, 3, H, W) RGB in [0, 1]; the extractor normalises them with the ImageNet mean
and standard deviation itself (as torchvision's pretrained weights expect).
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

# ImageNet statistics of torchvision's pretrained models, RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Output channels of each conv, "M" for a 2x2 max pool: torchvision's configuration "E" (VGG19).
VGG19_CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                       512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

SELFSUP_WEIGHTS = Path(__file__).parent / "weights" / "vgg19_selfsup.pt"
WEIGHTS_FORMAT = "srlib-vgg19-features"  # the "format" entry of the files the training script writes


def _layer_names(config: Sequence[int | str]) -> tuple[str, ...]:
    names, block, conv = [], 1, 1
    for item in config:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return tuple(names)


#: Names of the 37 modules of ``vgg19().features``; ``VGG19_LAYERS[N]`` is module ``features.N``.
VGG19_LAYERS: tuple[str, ...] = _layer_names(VGG19_CONFIG)
_INDEX = {name: i for i, name in enumerate(VGG19_LAYERS)}


def layer_index(name: str) -> int:
    """Index ``N`` of a layer in ``vgg19().features`` (``"relu2_2"`` -> 8).

    Raises:
        ValueError: an unknown name, with the closest valid ones.

    Example:
        >>> layer_index("relu5_4"), layer_index("conv1_1")
        (35, 0)
    """
    if name not in _INDEX:
        kind_block = re.match(r"(conv|relu|pool)\d", str(name))  # same kind in the same block first
        close = ([n for n in VGG19_LAYERS if n.startswith(kind_block.group())] if kind_block else []) or \
            difflib.get_close_matches(str(name), VGG19_LAYERS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown VGG19 layer {name!r}.{hint} Names are convB_K, reluB_K (B = 1..5, K = 1..2 "
                         "for B <= 2, 1..4 after) and poolB, as in srlib.features.VGG19_LAYERS")
    return _INDEX[name]


def layer_stride(name: str) -> int:
    """How many input pixels one feature pixel of ``name`` spans: 2 ** (max pools up to and including it).

    Example:
        >>> layer_stride("relu1_2"), layer_stride("pool1"), layer_stride("relu5_4")
        (1, 2, 16)
    """
    return 2 ** sum(n.startswith("pool") for n in VGG19_LAYERS[: layer_index(name) + 1])


def make_vgg19_features(num_layers: int = len(VGG19_LAYERS)) -> nn.Sequential:
    """The first ``num_layers`` modules of ``vgg19().features`` with torchvision's indices.

    ReLUs are not in-place: an extractor may return a conv output that the next ReLU would
    otherwise overwrite.
    """
    if not 1 <= num_layers <= len(VGG19_LAYERS):
        raise ValueError(f"num_layers must be in 1..{len(VGG19_LAYERS)}, got {num_layers}")
    layers: list[nn.Module] = []
    in_ch = 3
    for item in VGG19_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.ReLU()]
            in_ch = int(item)
    return nn.Sequential(*layers[:num_layers])


def init_vgg_(module: nn.Module, generator: torch.Generator) -> None:
    """torchvision's VGG initialisation, drawn from ``generator``: Kaiming-normal (fan-out, ReLU) convs,
    N(0, 0.01) linear layers, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01, generator=generator)
            nn.init.zeros_(m.bias)


class VGG19(nn.Module):
    """VGG19 in torchvision's layout: ``features`` (37 modules), ``avgpool``, ``classifier``.

    The state dict has exactly the keys and shapes of torchvision's ``vgg19()`` (143,667,240
    parameters), so a pretrained torchvision file loads with ``load_state_dict`` as it is.

    Args:
        num_classes: outputs of the last linear layer. Default: 1000 (ImageNet).
        seed: seeds the initialisation. Default: 0.

    Input: (N, 3, H, W), already ImageNet-normalised (torchvision's convention); output (N, num_classes).
    For losses use :class:`VGGFeatureExtractor`, which builds only the layers it needs. Usage (no
    doctest: the full network allocates 575 MB)::

        net = VGG19()
        net.load_state_dict(torch.load("vgg19-dcbb9e9d.pth", weights_only=True))  # torchvision's file
    """

    def __init__(self, num_classes: int = 1000, seed: int = 0):
        super().__init__()
        self.features = make_vgg19_features()
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )
        init_vgg_(self, torch.Generator().manual_seed(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # (N, 512, 7, 7)
        return self.classifier(torch.flatten(x, 1))  # (N, 512 * 49) -> (N, num_classes)


# ------------------------------------------------------------------------------------------ loading

def read_vgg19_state_dict(weights: str | os.PathLike | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A VGG19 state dict from a file or a mapping, in torchvision's key format.

    Accepts a torchvision file (a bare state dict), a dict with a ``"state_dict"`` entry (what the
    srlib training script writes, and many checkpoints), and keys prefixed by ``module.``
    (``DataParallel``). ``weights="selfsup"`` reads the extractor shipped in ``srlib/weights/``.
    Files are read with ``weights_only=True`` (no code runs).
    """
    if isinstance(weights, Mapping):
        state = dict(weights)
    else:
        path = SELFSUP_WEIGHTS if str(weights) == "selfsup" else Path(weights)
        if not path.is_file():
            fix = ("make it with `python scripts/train_feature_extractor.py` (about 15 minutes on 2 CPU cores)"
                   if str(weights) == "selfsup" else "give the path of a torchvision-format vgg19 state dict")
            raise FileNotFoundError(f"VGG19 weights {path} not found; {fix}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, Mapping):
            raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = dict(state["state_dict"])
    return {re.sub(r"^module\.", "", k): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_vgg19_weights(features: nn.Sequential, weights: str | os.PathLike | Mapping[str, torch.Tensor]) -> None:
    """Load the ``features.N.*`` weights a (possibly truncated) VGG19 ``features`` needs.

    Keys the truncated network does not have (deeper layers, ``classifier.*``) are ignored; a key
    it needs that is missing, has another shape, or a ``features.N`` that is not a VGG19 conv (the
    file of another architecture) raises ``ValueError`` saying what was found.

    Args:
        features: from :func:`make_vgg19_features`, i.e. ``features[N]`` is ``VGG19_LAYERS[N]``.
        weights: a path, ``"selfsup"`` or a state dict (see :func:`read_vgg19_state_dict`).
    """
    state = read_vgg19_state_dict(weights)
    found = {k: v for k, v in state.items() if k.startswith("features.")}
    if not found:
        raise ValueError(f"the weights hold no 'features.N.weight' keys (first keys: {list(state)[:4]}); expected a "
                         "torchvision-format vgg19 state dict (features.0.weight ... features.34.bias, classifier.*)")
    expected = {f"features.{k}": v for k, v in features.state_dict().items()}
    indices = sorted({int(k.split(".")[1]) for k in found})
    foreign = [i for i in indices if i >= len(VGG19_LAYERS) or not VGG19_LAYERS[i].startswith("conv")]
    if foreign:
        i = foreign[0]
        what = f"{VGG19_LAYERS[i]} (no parameters)" if i < len(VGG19_LAYERS) else "beyond its 37 modules"
        raise ValueError(f"these weights are not VGG19's: they have parameters at features.{i}, which is {what} in "
                         "VGG19. A vgg19_bn or vgg16 file? srlib needs plain vgg19 weights (torchvision layout)")
    missing = [k for k in expected if k not in found]
    if missing:
        raise ValueError(f"the weights lack {missing[:4]}{' ...' if len(missing) > 4 else ''}: they stop at VGG19's "
                         f"{VGG19_LAYERS[indices[-1]]}, and the extractor needs layers up to "
                         f"{VGG19_LAYERS[len(features) - 1]}; request shallower layers or give full vgg19 weights")
    bad = [(k, tuple(found[k].shape), tuple(v.shape)) for k, v in expected.items() if found[k].shape != v.shape]
    if bad:
        k, got, want = bad[0]
        raise ValueError(f"the weights are not VGG19's: {k} has shape {got}, VGG19 has {want}"
                         f"{f' ({len(bad)} layers differ)' if len(bad) > 1 else ''}")
    features.load_state_dict({k[len("features."):]: found[k] for k in expected})


# ----------------------------------------------------------------------------------------- extractor

class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 features of chosen layers, for losses (perceptual, texture, feature GAN).

    The network is cut after the deepest requested layer (``relu2_2`` needs 9 of the 37 modules),
    its parameters never require gradients and it stays in eval mode; gradients still flow to the
    *input*, which is what a perceptual loss needs.

    Args:
        layers: VGG19 layer names (``VGG19_LAYERS``), e.g. ``("relu2_2", "relu5_4")``.
        weights: ``None`` (random, seeded: **not** a trained VGG), ``"selfsup"`` (the extractor this
            project trains, ``srlib/weights/vgg19_selfsup.pt``), a path, or a torchvision-format
            state dict. Default: None.
        use_input_norm: normalise [0, 1] RGB input with the ImageNet mean/std (buffers), as the
            pretrained weights expect. Default: True.
        before_activation: take ``reluB_K`` layers *before* their ReLU, i.e. the ``convB_K`` output
            (ESRGAN's choice: features after the ReLU are sparse and lose brightness information).
            The returned dict keeps the requested names. Default: False.
        seed: seeds the random weights (``weights=None``). Default: 0.

    Attributes:
        weights_source: where the weights came from, in words (for figure captions and tables).

    ``forward(x)``: x (N, 3, H, W) RGB in [0, 1] -> ``{name: (N, C, H / s, W / s)}`` in the order of
    ``layers`` (``s = layer_stride(name)``).

    Example:
        >>> ext = VGGFeatureExtractor(("relu1_2", "relu2_2"))
        >>> {k: tuple(v.shape) for k, v in ext(torch.rand(1, 3, 16, 16)).items()}
        {'relu1_2': (1, 64, 16, 16), 'relu2_2': (1, 128, 8, 8)}
        >>> ext.weights_source
        'random (Kaiming-normal, seed 0): not a trained VGG'
    """

    def __init__(self, layers: Sequence[str] = ("relu2_2", "relu5_4"),
                 weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
                 use_input_norm: bool = True, before_activation: bool = False, seed: int = 0):
        super().__init__()
        if isinstance(layers, str):
            raise TypeError(f"layers must be a sequence of names, e.g. ({layers!r},), not a string")
        if not layers:
            raise ValueError("layers is empty; name at least one VGG19 layer, e.g. ('relu2_2',)")
        self.layers = tuple(layers)
        self.before_activation = before_activation
        self.use_input_norm = use_input_norm
        # which module output each requested name reads: reluB_K before activation is convB_K's output
        taps = {name: layer_index(name) - int(before_activation and name.startswith("relu")) for name in self.layers}
        self._names_at: dict[int, list[str]] = {}
        for name, index in taps.items():
            self._names_at.setdefault(index, []).append(name)
        self.features = make_vgg19_features(max(taps.values()) + 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        if weights is None:
            init_vgg_(self.features, torch.Generator().manual_seed(seed))
            self.weights_source = f"random (Kaiming-normal, seed {seed}): not a trained VGG"
        else:
            load_vgg19_weights(self.features, weights)
            self.weights_source = (f"self-supervised ({SELFSUP_WEIGHTS.name}, trained by this project)"
                                   if str(weights) == "selfsup" else
                                   "given state dict" if isinstance(weights, Mapping) else f"file {weights}")
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatureExtractor":
        # Frozen: a parent's .train() must not switch it (no dropout or BN here today, but a loss
        # network that changes with the caller's mode would be a trap).
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected RGB images (N, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.features):
            x = module(x)
            for name in self._names_at.get(i, ()):
                out[name] = x
        return {name: out[name] for name in self.layers}

    def extra_repr(self) -> str:
        return f"layers={self.layers}, before_activation={self.before_activation}, weights: {self.weights_source}"


def feature_size(name: str, size: int) -> int:
    """Side of the ``name`` feature map for an input side ``size`` (max pools floor, as torchvision's).

    Example:
        >>> feature_size("relu5_4", 296), feature_size("relu2_2", 48)
        (18, 24)
    """
    for layer in VGG19_LAYERS[: layer_index(name) + 1]:
        if layer.startswith("pool"):
            size //= 2
    return size
