"""DASR: blind SR conditioned on a degradation representation learned by contrastive learning (MoCo).

Paper: L. Wang, Y. Wang, X. Dong, Q. Xu, J. Yang, W. An, Y. Guo, "Unsupervised Degradation
Representation Learning for Blind Super-Resolution", CVPR 2021 [wang2021dasr]. Official code:
LongguangWang/DASR (``model/blindsr.py``, ``moco/builder.py``, ``trainer.py``, ``option.py``).

Instead of estimating the kernel explicitly (IKC), DASR learns an abstract *representation* of the
degradation, without labels, and adapts the SR network to it::

    fea, out = E(lr)            degradation encoder: 6 conv 3x3 + BN + LReLU(0.1) (3 -> 64 -> 64 -> 128 s2
                                -> 128 -> 256 s2 -> 256), global average pool -> fea (256-d);
                                MLP head 256 -> 256 -> 256 -> out
    sr = G(lr, compress(fea))   the SR network, conditioned on fea compressed to 64-d (Linear, LReLU)

**The SR network reads the pooled encoder feature ``fea``, not the MLP output**: ``out`` only feeds
the contrastive loss (MoCo's projection head). Contrastive learning, MoCo style [he2020moco]: two LR
patches of the *same image* share its (random) degradation and are a positive pair (query, key);
keys of earlier batches, other images with other degradations, wait in a queue (K = 8192) as
negatives; the key encoder is a momentum copy of the query encoder (m = 0.999); the loss is InfoNCE
with temperature 0.07 (:func:`srlib.losses.info_nce`). The representation learns what differs
between degradations, not what differs between image contents.

G is an EDSR-like network of 5 degradation-aware groups (DAG) of 5 blocks (DAB), 64 features::

    DA conv(x, v):  out = conv1x1(LReLU(depthwise_conv(x, W(v)))) + x * sigmoid(CA(v))
                    W(v): Linear 64 -> 64, LReLU, Linear 64 -> 64*3*3 (no biases): a 3x3 kernel per
                    channel and *per sample*, predicted from that sample's representation v
                    CA(v): 1x1 64 -> 8, LReLU, 8 -> 64 (no biases): channel modulation by v
    DAB:            DA conv -> LReLU -> conv 3x3 -> LReLU -> DA conv -> LReLU -> conv 3x3, + x
    DAG:            DABs -> conv 3x3, + x;  G: head conv, DAGs, conv, long skip, sub-pixel upsampler, conv

Parameters: G 4,542,787 / 4,727,427 / 4,690,499 and the query encoder (E 1,147,200 + MLP 131,584)
for 5,821,571 / 6,006,211 / 5,969,283 at x2 / x3 / x4, the deployable count of the reference
sheet. The key encoder is an exponential moving average of the query encoder, never trained by
gradients, so here its weights are **buffers** (:func:`momentum_copy`): they move with ``.to()``
and live in the ``state_dict`` but are not parameters, and ``count_parameters`` gives the
deployable count (the official module counts them as frozen parameters; its checkpoints drop
them and the queue).

Training (:func:`train_two_stage`): first the encoder alone with the contrastive loss (100 epochs,
Adam 1e-3), then everything jointly with L1 + contrastive (Adam 1e-4). Batches carry two views:
LR (N, 2, 3, h, w) from :class:`srlib.blind.BlindPatchSource` with ``views=2``.

Faithful details: LReLU slope 0.1 everywhere; the network sees [0, 255] values like EDSR-PyTorch
(``img_range``, as in :mod:`srlib.models.edsr`), the encoder too (no mean shift). The official
joint loss is ``L1 + CE`` with L1 on [0, 255] images; on [0, 1] images the same balance is ``L1 +
CE / 255`` (``contrastive_weight``). Generalisations: the official DA conv hard-codes 64 for the
representation and the kernel generator; here both follow ``num_feat`` (the compressed
representation has ``num_feat`` entries, as the channel branch requires), identical at 64.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .common import MeanShiftedRGB, Upsample, build, check_scale, conv3x3

NEGATIVE_SLOPE = 0.1  # LeakyReLU slope everywhere in blindsr.py


@dataclass
class DASRConfig:
    num_feat: int = 64  # width of G, and size of the compressed representation (blindsr.py n_feats)
    num_group: int = 5  # DAGs (n_groups)
    num_block: int = 5  # DABs per DAG (n_blocks)
    kernel_size: int = 3  # side of the predicted depthwise kernels
    reduction: int = 8  # channel reduction of the DA conv's modulation branch
    enc_feat: int = 64  # encoder widths enc_feat x (1, 1, 2, 2, 4, 4): a 256-d representation
    queue_size: int = 8192  # MoCo K = 32 * 256 (moco/builder.py; its docstring's 65536 is stale)
    momentum: float = 0.999  # MoCo m of the key encoder's moving average
    temperature: float = 0.07  # MoCo T
    contrastive_weight: float = 1 / 255  # official L1 (on [0, 255]) + CE, rescaled to [0, 1] images
    img_range: float = 255.0  # the networks see [0, 255] values, as the official rgb_range = 255


# ------------------------------------------------------------------------------------ degradation encoder

class DegradationEncoder(nn.Module):
    """E and its MLP head: ``forward(x) -> (fea, out)``, the pooled feature and the projection.

    Args:
        num_feat: width of the first convs; the six convs have num_feat x (1, 1, 2, 2, 4, 4) channels,
            the third and fifth with stride 2. Default: 64 (a 256-d ``fea``).

    ``x`` is (N, 3, h, w) (in the network's value range); ``fea`` and ``out`` are (N, 4 * num_feat).
    """

    def __init__(self, num_feat: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for mult, stride in zip((1, 1, 2, 2, 4, 4), (1, 1, 2, 1, 2, 1)):
            out_ch = mult * num_feat
            layers += [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), nn.BatchNorm2d(out_ch),
                       nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)]
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.dim = in_ch
        self.mlp = nn.Sequential(nn.Linear(self.dim, self.dim), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
                                 nn.Linear(self.dim, self.dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fea = self.features(x).mean(dim=(2, 3))  # global average pool: (N, D)
        return fea, self.mlp(fea)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters are buffers (MoCo's key encoder).

    The copy runs exactly like the original (modules look buffers and parameters up by the same
    names) but is updated by a moving average (:meth:`DASR.momentum_update`), not by an optimiser:
    it is in the ``state_dict`` and moves with ``.to()``, and it adds nothing to the parameter count.
    """
    clone = copy.deepcopy(module)
    for sub in clone.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            delattr(sub, name)  # out of _parameters ...
            sub.register_buffer(name, param.detach().clone())  # ... into _buffers, same name
    return clone


# ------------------------------------------------------------------------------- degradation-aware blocks

class DAConv(nn.Module):
    """Degradation-aware convolution: a per-sample depthwise conv + a per-sample channel modulation.

    Args:
        num_feat: channels C of the features, and length of the representation v. Default: 64.
        kernel_size: side k of the predicted depthwise kernels. Default: 3.
        reduction: channel reduction of the modulation branch. Default: 8.

    ``forward(x (B, C, h, w), v (B, C))`` -> (B, C, h, w). :meth:`kernels` gives the predicted kernels
    (B, C, k, k) for a figure; the modulation's sigmoid is the ``gate`` module (hookable).
    """

    def __init__(self, num_feat: int = 64, kernel_size: int = 3, reduction: int = 8):
        super().__init__()
        self.kernel_size = kernel_size
        self.kernel = nn.Sequential(nn.Linear(num_feat, num_feat, bias=False),
                                    nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
                                    nn.Linear(num_feat, num_feat * kernel_size * kernel_size, bias=False))
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)
        self.conv = nn.Conv2d(num_feat, num_feat, 1)
        self.modulation = nn.Sequential(nn.Conv2d(num_feat, num_feat // reduction, 1, bias=False),
                                        nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
                                        nn.Conv2d(num_feat // reduction, num_feat, 1, bias=False))
        self.gate = nn.Sigmoid()

    def kernels(self, v: torch.Tensor) -> torch.Tensor:
        """The depthwise kernels predicted from the representation: (B, C) -> (B, C, k, k)."""
        k = self.kernel_size
        return self.kernel(v).view(v.shape[0], -1, k, k)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k = self.kernel_size
        weight = self.kernels(v).reshape(b * c, 1, k, k)  # one k x k kernel per (sample, channel)
        # the batch folded into channels: a grouped conv with B*C groups applies sample i's kernels to sample i only
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=k // 2, groups=b * c)  # (1, B*C, h, w)
        out = self.conv(self.act(out).view(b, c, h, w))
        return out + x * self.gate(self.modulation(v[:, :, None, None]))  # modulation: (B, C, 1, 1)


class DABlock(nn.Module):
    """DA conv -> LReLU -> conv -> LReLU -> DA conv -> LReLU -> conv, plus the identity (``DAB``)."""

    def __init__(self, num_feat: int = 64, kernel_size: int = 3, reduction: int = 8):
        super().__init__()
        self.da_conv1 = DAConv(num_feat, kernel_size, reduction)
        self.da_conv2 = DAConv(num_feat, kernel_size, reduction)
        self.conv1, self.conv2 = conv3x3(num_feat, num_feat), conv3x3(num_feat, num_feat)
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = self.act(self.conv1(self.act(self.da_conv1(x, v))))
        out = self.conv2(self.act(self.da_conv2(out, v)))
        return x + out


class DAGroup(nn.Module):
    """``num_block`` DA blocks and a conv, plus the identity (``DAG``)."""

    def __init__(self, num_feat: int = 64, num_block: int = 5, kernel_size: int = 3, reduction: int = 8):
        super().__init__()
        self.blocks = nn.ModuleList([DABlock(num_feat, kernel_size, reduction) for _ in range(num_block)])
        self.conv = conv3x3(num_feat, num_feat)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = x
        for block in self.blocks:
            out = block(out, v)
        return x + self.conv(out)


class DASRNet(MeanShiftedRGB):
    """G, the degradation-aware SR network: ``forward(lr, fea)`` with ``fea`` the encoder's pooled feature.

    Args:
        scale: 2^n or 3.
        rep_dim: length of ``fea`` (256 in the paper); compressed to ``num_feat``.
        num_feat, num_group, num_block, kernel_size, reduction: see :class:`DASR`.
        img_range: the mean-shifted input is multiplied by this. Default: 255.
    """

    def __init__(self, scale: int, rep_dim: int = 256, num_feat: int = 64, num_group: int = 5, num_block: int = 5,
                 kernel_size: int = 3, reduction: int = 8, img_range: float = 255.0):
        super().__init__(img_range)
        self.head = conv3x3(3, num_feat)
        self.compress = nn.Sequential(nn.Linear(rep_dim, num_feat, bias=False),
                                      nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))
        self.body = nn.ModuleList([DAGroup(num_feat, num_block, kernel_size, reduction) for _ in range(num_group)])
        self.body_conv = conv3x3(num_feat, num_feat)
        self.upsample = Upsample(scale, num_feat)
        self.tail = conv3x3(num_feat, 3)

    def forward(self, lr: torch.Tensor, fea: torch.Tensor) -> torch.Tensor:
        v = self.compress(fea)  # the representation the DA convs read: (N, num_feat)
        x = self.head(self.to_network(lr))  # (N, F, h, w)
        out = x
        for group in self.body:
            out = group(out, v)
        out = x + self.body_conv(out)  # long skip
        return self.to_image(self.tail(self.upsample(out)))  # (N, 3, s*h, s*w)


# ------------------------------------------------------------------------------------------------- DASR

class DASR(nn.Module):
    """Blind SR: the degradation encoder (+ MoCo key encoder and queue) and the SR network G.

    ``forward(lr)`` estimates the representation of each image with the query encoder and
    super-resolves it; :meth:`represent` returns the representation alone (the ``encoder`` module can
    also be hooked). :meth:`training_loss` is what ``srlib.train.fit`` calls (two views per image).

    Args:
        scale: 2, 3 or 4 (any 2^n or 3).
        num_feat: width of G. Default: 64.
        num_group, num_block: DAGs and DABs per DAG. Defaults: 5, 5.
        kernel_size: side of the predicted depthwise kernels. Default: 3.
        reduction: channel reduction of the modulation branch. Default: 8.
        enc_feat: encoder width (a 4 * enc_feat representation). Default: 64.
        queue_size: negatives in the MoCo queue. Default: 8192.
        momentum: of the key encoder's moving average. Default: 0.999.
        temperature: of InfoNCE. Default: 0.07.
        contrastive_weight: weight of InfoNCE next to the SR loss in the joint stage. Default: 1/255.
        img_range: value range the networks see. Default: 255.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = DASR(scale=2, num_feat=8, num_group=1, num_block=1, enc_feat=4, queue_size=16)
        >>> net(torch.rand(2, 3, 12, 12)).shape, net.represent(torch.rand(2, 3, 12, 12)).shape
        (torch.Size([2, 3, 24, 24]), torch.Size([2, 16]))
        >>> loss = net.training_loss(torch.rand(2, 2, 3, 12, 12), torch.rand(2, 2, 3, 24, 24), torch.nn.L1Loss())
        >>> int(net.queue_ptr)  # two keys entered the queue
        2
    """

    stage: str = "joint"  # "encoder": contrastive loss only (stage 1); "joint": SR + contrastive

    def __init__(self, scale: int, num_feat: int = 64, num_group: int = 5, num_block: int = 5, kernel_size: int = 3,
                 reduction: int = 8, enc_feat: int = 64, queue_size: int = 8192, momentum: float = 0.999,
                 temperature: float = 0.07, contrastive_weight: float = 1 / 255, img_range: float = 255.0):
        super().__init__()
        check_scale(scale, "2^n and 3 (DASR's registered scales: 2, 3, 4)")
        if num_feat // reduction < 1:
            raise ValueError(f"reduction={reduction} leaves no channel in the modulation of {num_feat} features; "
                             f"use reduction <= {num_feat}")
        self.scale, self.img_range = scale, img_range
        self.momentum, self.temperature, self.contrastive_weight = momentum, temperature, contrastive_weight
        self.encoder = DegradationEncoder(enc_feat)  # MoCo's query encoder: E + MLP head
        self.encoder_k = momentum_copy(self.encoder)  # MoCo's key encoder: weights are buffers
        # the queue of negative keys, one per row, L2-normalised random vectors until real keys arrive
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, self.encoder.dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.sr = DASRNet(scale, self.encoder.dim, num_feat, num_group, num_block, kernel_size, reduction, img_range)

    def represent(self, lr: torch.Tensor) -> torch.Tensor:
        """The degradation representation ``fea`` (N, 4 * enc_feat) of LR images (N, 3, h, w) in [0, 1]."""
        return self.encoder(lr * self.img_range)[0]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR images (N, 3, h, w), got shape {tuple(lr.shape)}")
        return self.sr(lr, self.represent(lr))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """key <- m * key + (1 - m) * query, for every weight of the encoder (MoCo Eq. 2)."""
        for name, param in self.encoder.named_parameters():
            self.encoder_k.get_buffer(name).mul_(self.momentum).add_(param.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest rows of the queue with ``keys`` (N, D), wrapping around the end."""
        size = self.queue.shape[0]
        rows = (int(self.queue_ptr) + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[rows] = F.normalize(keys.detach(), dim=1).to(self.queue.dtype)
        self.queue_ptr.fill_((int(self.queue_ptr) + keys.shape[0]) % size)

    def contrastive_loss(self, query_lr: torch.Tensor, key_lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MoCo on LR patches (N, 3, h, w): ``(InfoNCE, fea of the queries)``; updates key encoder and queue.

        ``query_lr[i]`` and ``key_lr[i]`` must share a degradation (two patches of one image).
        """
        from ..losses import info_nce

        fea, query = self.encoder(query_lr * self.img_range)
        with torch.no_grad():
            self.momentum_update()
            _, key = self.encoder_k(key_lr * self.img_range)
        # a copy of the queue: the enqueue below writes into it in place, after the logits used it
        loss = info_nce(query, key, self.queue.clone(), self.temperature)
        self.enqueue(key)
        return loss, fea

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor, criterion, progress: float = 0.0) -> torch.Tensor:
        """The loss of the current :attr:`stage` on a batch of two views per image.

        Args:
            lr: (N, 2, 3, h, w): two LR patches of each image with its degradation (query, key).
            hr: (N, 2, 3, s*h, s*w) or (N, 3, s*h, s*w): the HR of the query patches.
            criterion: the SR loss (``fit`` passes its ``loss``; L1 as the paper).
            progress: unused (the stages are set by :func:`train_two_stage`).

        Returns:
            ``InfoNCE`` in the ``"encoder"`` stage; ``criterion(sr, hr) + contrastive_weight * InfoNCE``
            in the ``"joint"`` stage.
        """
        if lr.dim() != 5 or lr.shape[1] != 2:
            raise ValueError(f"DASR trains on two LR patches per image sharing its degradation, (N, 2, 3, h, w), got "
                             f"{tuple(lr.shape)}; sample batches with srlib.blind.BlindPatchSource(..., views=2)")
        if self.stage not in ("encoder", "joint"):
            raise ValueError(f"DASR.stage must be 'encoder' or 'joint', got {self.stage!r}")
        contrastive, fea = self.contrastive_loss(lr[:, 0], lr[:, 1])
        if self.stage == "encoder":
            return contrastive
        target = hr[:, 0] if hr.dim() == 5 else hr
        return criterion(self.sr(lr[:, 0], fea).float(), target) + self.contrastive_weight * contrastive


def train_two_stage(model: DASR, data, encoder_steps: int, joint_steps: int, *, encoder_lr: float = 1e-3,
                    joint_lr: float = 1e-4, seed: int = 0, **fit_kwargs) -> tuple:
    """DASR's schedule: the encoder alone (contrastive loss), then everything jointly (L1 + contrastive).

    Two calls of ``srlib.train.fit`` (a fresh Adam each, as the official learning rate jumps from the
    encoder's to the SR one); the model's :attr:`DASR.stage` is set for each. The official run: 100
    epochs at 1e-3 (x0.1 every 60), then 500 epochs at 1e-4 (x0.5 every 125).

    Args:
        model: a :class:`DASR`.
        data: a batch source with two views per image (``BlindPatchSource(..., views=2)``).
        encoder_steps, joint_steps: steps of each stage (take them from ``srlib.get_budget()``).
        encoder_lr, joint_lr: Adam learning rates. Defaults: 1e-3, 1e-4 (``option.py``).
        seed: stage 1 uses ``seed``, stage 2 ``seed + 1`` (fresh batches).
        **fit_kwargs: passed to ``fit`` (``batch_size``, ``device``, ``progress``, ``val_images``, ...).

    Returns:
        The two :class:`srlib.train.FitResult` (encoder stage, joint stage).
    """
    from ..train import fit

    model.stage = "encoder"
    first = fit(model, data, encoder_steps, lr=encoder_lr, seed=seed, **fit_kwargs)
    model.stage = "joint"
    second = fit(model, data, joint_steps, lr=joint_lr, seed=seed + 1, **fit_kwargs)
    return first, second


SCALES = (2, 3, 4)
PAPER = "Wang et al., CVPR 2021 (DASR)"


@register_model("dasr", scales=SCALES, paper=PAPER, blind=True)
def dasr(scale: int = 4, **overrides) -> DASR:
    """DASR, G + query encoder: 5,821,571 / 6,006,211 / 5,969,283 parameters at x2 / x3 / x4."""
    return build(DASR, scale, DASRConfig(), overrides)


@register_model("dasr_tiny", scales=SCALES, paper=PAPER + ", CPU preset", blind=True)
def dasr_tiny(scale: int = 4, **overrides) -> DASR:
    # shrunk: G width 64 -> 12, 5x5 -> 2x2 DAGs x DABs, modulation reduction 8 -> 4 (12 // 8 would leave
    # one channel); encoder widths /8 (a 32-d representation); queue 8192 -> 512 and momentum
    # 0.999 -> 0.99, so that a few hundred steps fill the queue with real keys and move the key encoder
    return build(DASR, scale, DASRConfig(num_feat=12, num_group=2, num_block=2, reduction=4, enc_feat=8,
                                         queue_size=512, momentum=0.99), overrides)
