"""IKC: blind SR by iterative kernel correction, around SFTMD, an SR network conditioned on the kernel.

Paper: J. Gu, H. Lu, W. Zuo, C. Dong, "Blind Super-Resolution With Iterative Kernel Correction",
CVPR 2019 [gu2019ikc]. Official code: yuanjunchai/IKC (``codes/models/modules/sftmd_arch.py``,
``codes/train_IKC.py``, ``codes/test_IKC.py``, ``codes/options/*/*.yml``).

Three networks and a loop. A blur kernel k (21x21) is represented by its 10-d PCA code h
(:class:`srlib.blind.KernelPCA`, kept in ``model.kernel_pca``)::

    SFTMD(lr, h)      the SR network: an SRResNet-like trunk whose features are modulated, at every
                      block, by a spatial feature transform (SFT) of the code stretched to a map:
                      F' = F * sigmoid(conv(cat(F, h))) + conv(cat(F, h))
    Predictor(lr)     6 conv 5x5 (one stride 2) -> global average pool -> h_0
    Corrector(sr, h)  7 conv 5x5 (two stride 2) on the SR image + 2 dense layers on h -> 1x1 convs
                      -> global average pool -> Δh;  h_{t+1} = h_t + Δh

    h = Predictor(lr)
    repeat t = 1..7:  sr = SFTMD(lr, h);  h = Corrector(sr, h)          (``forward``: the last sr)

A wrong kernel gives SR images with tell-tale artefacts (over-sharpened rings for a too-wide kernel,
blur for a too-narrow one); the corrector learns to read them and fix the estimate.

SFTMD in detail (``sftmd_arch.py``): conv 3x3 (3 -> 64), LReLU(0.2), conv, LReLU, conv; 16
SFT residual blocks (SFT -> ReLU -> conv -> SFT -> ReLU -> conv, + x; each SFT layer has two
3x3 branches 74 -> 32 -> 64, one through a sigmoid (multiplicative), one linear (additive)); the
long skip; SFT -> conv; sub-pixel upsampling with LReLU (two x2 steps at x4, one step at x2/x3);
conv 9x9 (64 -> 3); clamp to [0, 1]. Parameters: 4,234,691 / 4,086,979 / 4,271,619 at x4 / x2 /
x3. The official class reports 7,966,147 at x4 because it also builds ``sft_branch``, 16 more SFT
blocks (3,731,456 parameters) that ``forward`` never calls; it is left out here, so the count is
the one of the network that runs. Predictor: 430,730; Corrector: 649,930 (any scale). The whole
``ikc`` model at x4: 5,315,351.

Training is staged (:func:`train_ikc`): (1) SFTMD on ground-truth codes, L1; (2) the predictor
and the corrector on the codes, L2, with the corrector run over the t = 7 steps of the loop and
SFTMD frozen. Differences with the official code:

* The PCA basis: fit at construction on 200 isotropic kernels, σ evenly spaced in [0.2, 4.0]
  (IKC fit its ``pca_matrix.pth`` on 30,000 random isotropic kernels of the same range: the same
  one-parameter family); refit it with ``model.kernel_pca.fit(kernels)`` for another
  degradation space before training. Codes are centred (see :class:`~srlib.blind.KernelPCA`).
* Stage 2 sums the predictor loss and the seven corrector losses of a batch into one backward and
  one Adam step over both networks; the official code steps the predictor once and the corrector
  after each of the seven corrections, with separate optimisers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import register_model
from .common import build, conv3x3

NEGATIVE_SLOPE = 0.2  # LeakyReLU slope everywhere in sftmd_arch.py


@dataclass
class IKCConfig:
    num_feat: int = 64  # SFTMD width (sftmd_arch.py: 64)
    num_block: int = 16  # SFT residual blocks (SFTMD residuals=16)
    sft_feat: int = 32  # hidden channels of each SFT branch (SFT_Layer: 32)
    estimator_feat: int = 64  # width of the predictor and the corrector (ndf = 64)
    code_len: int = 10  # PCA code length (input_para / code_length = 10)
    kernel_size: int = 21  # kernels are 21x21 (train_*.yml kernel_size)
    num_iter: int = 7  # correction steps of the loop (train/test_Corrector.yml step: 7)


# ------------------------------------------------------------------------------------------------ SFTMD

class SFTLayer(nn.Module):
    """Spatial feature transform: features modulated by a condition map, ``F * γ + β``.

    ``γ = sigmoid(conv(LReLU(conv(cat(F, h)))))`` and ``β = conv(LReLU(conv(cat(F, h))))``; the sigmoid
    is its own module (``gate``) so a forward hook can collect the modulation maps for a figure.

    Args:
        num_feat: channels of the features F. Default: 64.
        code_len: channels of the condition map h. Default: 10.
        hidden: channels inside each branch. Default: 32.

    ``forward(feat (N, F, h, w), code_map (N, L, h, w))`` -> (N, F, h, w).
    """

    def __init__(self, num_feat: int = 64, code_len: int = 10, hidden: int = 32):
        super().__init__()
        self.mul = nn.Sequential(conv3x3(num_feat + code_len, hidden), nn.LeakyReLU(NEGATIVE_SLOPE),
                                 conv3x3(hidden, num_feat))
        self.gate = nn.Sigmoid()
        self.add = nn.Sequential(conv3x3(num_feat + code_len, hidden), nn.LeakyReLU(NEGATIVE_SLOPE),
                                 conv3x3(hidden, num_feat))

    def forward(self, feat: torch.Tensor, code_map: torch.Tensor) -> torch.Tensor:
        x = torch.cat([feat, code_map], dim=1)  # (N, F + L, h, w)
        return feat * self.gate(self.mul(x)) + self.add(x)


class SFTResBlock(nn.Module):
    """SFT -> ReLU -> conv -> SFT -> ReLU -> conv, plus the identity (``SFT_Residual_Block``)."""

    def __init__(self, num_feat: int = 64, code_len: int = 10, hidden: int = 32):
        super().__init__()
        self.sft1, self.sft2 = SFTLayer(num_feat, code_len, hidden), SFTLayer(num_feat, code_len, hidden)
        self.conv1, self.conv2 = conv3x3(num_feat, num_feat), conv3x3(num_feat, num_feat)

    def forward(self, feat: torch.Tensor, code_map: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.sft1(feat, code_map)))
        out = self.conv2(F.relu(self.sft2(out, code_map)))
        return feat + out


def sftmd_upsampler(scale: int, num_feat: int) -> nn.Sequential:
    """SFTMD's sub-pixel upsampler: [conv 3x3 -> PixelShuffle -> LReLU] twice (x2 each) at x4, once at x2/x3."""
    if scale not in (2, 3, 4):
        raise ValueError(f"IKC's SFTMD supports scales 2, 3 and 4 (sftmd_arch.py), got {scale!r}")
    steps = [2, 2] if scale == 4 else [scale]
    return nn.Sequential(*[m for r in steps for m in (conv3x3(num_feat, num_feat * r * r), nn.PixelShuffle(r),
                                                      nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))])


class SFTMD(nn.Module):
    """The SR network of IKC, conditioned on a kernel code by SFT layers (non-blind on its own).

    Args:
        scale: 2, 3 or 4.
        num_feat: width. Default: 64.
        num_block: SFT residual blocks. Default: 16.
        sft_feat: hidden channels of the SFT branches. Default: 32.
        code_len: length of the kernel code. Default: 10.

    ``forward(lr (N, 3, h, w) in [0, 1], code (N, L))`` -> (N, 3, scale*h, scale*w), clamped to [0, 1]
    as the original.
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 16, sft_feat: int = 32, code_len: int = 10):
        super().__init__()
        self.head = nn.Sequential(conv3x3(3, num_feat), nn.LeakyReLU(NEGATIVE_SLOPE),
                                  conv3x3(num_feat, num_feat), nn.LeakyReLU(NEGATIVE_SLOPE),
                                  conv3x3(num_feat, num_feat))
        self.body = nn.ModuleList([SFTResBlock(num_feat, code_len, sft_feat) for _ in range(num_block)])
        self.sft = SFTLayer(num_feat, code_len, sft_feat)
        self.conv_mid = conv3x3(num_feat, num_feat)
        self.upsample = sftmd_upsampler(scale, num_feat)
        self.tail = nn.Conv2d(num_feat, 3, 9, padding=4)

    def forward(self, lr: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        n, _, h, w = lr.shape
        code_map = code[:, :, None, None].expand(n, code.shape[1], h, w)  # the code stretched: (N, L, h, w)
        feat = self.head(lr)  # (N, F, h, w)
        x = feat
        for block in self.body:
            x = block(x, code_map)
        x = self.conv_mid(self.sft(x + feat, code_map))  # long skip, then a last SFT
        return self.tail(self.upsample(x)).clamp(0, 1)  # (N, 3, s*h, s*w)


# ------------------------------------------------------------------------------- predictor and corrector

def conv5x5_stack(in_ch: int, out_chs: list[int], strides: list[int]) -> nn.Sequential:
    """Conv 5x5 + LReLU(0.2) layers (the predictor's and the corrector's feature extractors)."""
    layers: list[nn.Module] = []
    for out_ch, stride in zip(out_chs, strides):
        layers += [nn.Conv2d(in_ch, out_ch, 5, stride=stride, padding=2), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)]
        in_ch = out_ch
    return nn.Sequential(*layers)


class Predictor(nn.Module):
    """The initial kernel estimate from the LR image: 6 conv 5x5 (the 4th with stride 2) -> GAP -> code.

    ``forward(lr (N, 3, h, w))`` -> (N, code_len). Default widths: 430,730 parameters.
    """

    def __init__(self, code_len: int = 10, num_feat: int = 64):
        super().__init__()
        self.body = conv5x5_stack(3, [num_feat] * 5 + [code_len], [1, 1, 1, 2, 1, 1])

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.body(lr).mean(dim=(2, 3))  # global average pool: (N, L)


class Corrector(nn.Module):
    """A correction of the kernel code from the SR image it produced: returns ``h + Δh``.

    The SR image goes through 7 conv 5x5 (two with stride 2); the code through two dense layers,
    broadcast over the feature map; both concatenated -> 1x1 convs -> GAP -> Δh.
    ``forward(sr (N, 3, H, W), code (N, L))`` -> (N, L). Default widths: 649,930 parameters.
    """

    def __init__(self, code_len: int = 10, num_feat: int = 64):
        super().__init__()
        self.image = conv5x5_stack(3, [num_feat] * 7, [1, 2, 1, 2, 1, 1, 1])
        self.code = nn.Sequential(nn.Linear(code_len, num_feat), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
                                  nn.Linear(num_feat, num_feat), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))
        self.fuse = nn.Sequential(nn.Conv2d(2 * num_feat, 2 * num_feat, 1), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
                                  nn.Conv2d(2 * num_feat, num_feat, 1), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
                                  nn.Conv2d(num_feat, code_len, 1))

    def forward(self, sr: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        feat = self.image(sr)  # (N, F, H/4, W/4)
        code_feat = self.code(code)[:, :, None, None].expand(-1, -1, *feat.shape[-2:])  # (N, F, H/4, W/4)
        delta = self.fuse(torch.cat([feat, code_feat], dim=1)).mean(dim=(2, 3))  # Δh: (N, L)
        return code + delta


# ------------------------------------------------------------------------------------------------- IKC

class IKC(nn.Module):
    """Blind SR: predictor -> (SFTMD -> corrector) x ``num_iter``; ``forward(lr)`` is the last SR image.

    Args:
        scale: 2, 3 or 4.
        num_feat, num_block, sft_feat: SFTMD's width, blocks, SFT hidden width. Defaults: 64, 16, 32.
        estimator_feat: width of the predictor and the corrector. Default: 64.
        code_len: PCA code length. Default: 10.
        kernel_size: side of the kernels the codes stand for. Default: 21.
        num_iter: correction steps. Default: 7.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w) in [0, 1].
    :meth:`forward_iterations` also returns every step's SR image and code; decode a code to a
    kernel with ``model.kernel_pca.decode(code)``.

    Example:
        >>> import torch
        >>> net = IKC(scale=2, num_feat=8, num_block=1, sft_feat=4, estimator_feat=4, num_iter=2)
        >>> net(torch.rand(1, 3, 12, 12)).shape
        torch.Size([1, 3, 24, 24])
        >>> srs, codes = net.forward_iterations(torch.rand(1, 3, 12, 12))
        >>> len(srs), len(codes), net.kernel_pca.decode(codes[-1]).shape  # codes: h_0 .. h_2
        (2, 3, torch.Size([1, 21, 21]))
    """

    def __init__(self, scale: int, num_feat: int = 64, num_block: int = 16, sft_feat: int = 32,
                 estimator_feat: int = 64, code_len: int = 10, kernel_size: int = 21, num_iter: int = 7):
        super().__init__()
        from ..blind import DegradationParams, KernelPCA

        if num_iter < 1:
            raise ValueError(f"num_iter must be >= 1, got {num_iter}")
        self.scale, self.num_iter = scale, num_iter
        self.sftmd = SFTMD(scale, num_feat, num_block, sft_feat, code_len)
        self.predictor = Predictor(code_len, estimator_feat)
        self.corrector = Corrector(code_len, estimator_feat)
        # The code space: PCA of isotropic kernels over IKC's x4 range (see the module docstring),
        # computed on the CPU even when the model is built on another default device (e.g. "meta").
        self.kernel_pca = KernelPCA(kernel_size, code_len)
        with torch.device("cpu"):
            widths = torch.linspace(0.2, 4.0, 200)
            self.kernel_pca.fit(DegradationParams.isotropic(widths, kernel_size=kernel_size).kernels())

    def forward_iterations(self, lr: torch.Tensor, num_iter: int | None = None
                           ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The loop: SR images [sr_1 .. sr_T] and codes [h_0 .. h_T] (h_T is estimated from sr_T)."""
        code = self.predictor(lr)  # h_0: (N, L)
        srs, codes = [], [code]
        for _ in range(num_iter or self.num_iter):
            srs.append(self.sftmd(lr, code))  # (N, 3, s*h, s*w)
            code = self.corrector(srs[-1], code)  # h_{t+1} = h_t + Δh
            codes.append(code)
        return srs, codes

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.forward_iterations(lr)[0][-1]

    def sftmd_loss(self, lr: torch.Tensor, hr: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """Stage 1: L1 of SFTMD given the true kernels (N, k, k) of the batch."""
        return F.l1_loss(self.sftmd(lr, self.kernel_pca.encode(kernels).to(lr.dtype)), hr)

    def estimator_loss(self, lr: torch.Tensor, kernels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: ``(predictor L2, corrector L2 summed over the steps)`` against the true codes.

        SFTMD runs without gradients (frozen); the code fed to each correction is detached, so each
        step learns to correct the estimate it is given, as in the official loop.
        """
        target = self.kernel_pca.encode(kernels).to(lr.dtype)  # (N, L)
        code = self.predictor(lr)
        predictor_loss = F.mse_loss(code, target)
        corrector_loss = lr.new_zeros(())
        code = code.detach()
        for _ in range(self.num_iter):
            with torch.no_grad():
                sr = self.sftmd(lr, code)
            code = self.corrector(sr, code)
            corrector_loss = corrector_loss + F.mse_loss(code, target)
            code = code.detach()
        return predictor_loss, corrector_loss


def train_ikc(model: IKC, source, sftmd_steps: int, estimator_steps: int, *, batch_size: int = 16,
              lr: float = 1e-4, seed: int = 0, progress: bool = True) -> dict[str, list[float]]:
    """IKC's staged training: SFTMD on true codes, then the predictor and corrector (SFTMD frozen).

    ``srlib.train.fit`` cannot be used: every batch needs its true kernels, which ``fit``'s
    ``(lr, hr)`` batches do not carry.

    Args:
        model: an :class:`IKC` (trained in place, on its current device).
        source: gives ``sample(batch_size, generator) -> (lr, hr, params)``, e.g.
            ``srlib.blind.BlindPatchSource(images, scale, DegradationSpace(...))``.
        sftmd_steps, estimator_steps: Adam steps of each stage (take them from ``srlib.get_budget()``).
        batch_size: patches per step. Default: 16.
        lr: Adam learning rate of both stages. Default: 1e-4 (IKC's yml files).
        seed: seeds the batches.
        progress: show tqdm progress bars.

    Returns:
        ``{"sftmd": [...], "predictor": [...], "corrector": [...]}``, the loss of every step.
    """
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"sftmd": [], "predictor": [], "corrector": []}
    model.train()
    stages = [("sftmd", "SFTMD on true kernels", sftmd_steps, list(model.sftmd.parameters())),
              ("estimators", "predictor + corrector", estimator_steps,
               list(model.predictor.parameters()) + list(model.corrector.parameters()))]
    for stage, desc, steps, params in stages:
        optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))  # IKC's yml: beta2 0.99
        for _ in tqdm(range(steps), desc=f"IKC: {desc}", unit="step", disable=not progress):
            lr_batch, hr_batch, degradation = source.sample(batch_size, generator)
            lr_batch, hr_batch = lr_batch.to(device), hr_batch.to(device)
            kernels = degradation.kernels().to(device)
            if stage == "sftmd":
                loss = model.sftmd_loss(lr_batch, hr_batch, kernels)
                history["sftmd"].append(loss.item())
            else:
                predictor_loss, corrector_loss = model.estimator_loss(lr_batch, kernels)
                loss = predictor_loss + corrector_loss
                history["predictor"].append(predictor_loss.item())
                history["corrector"].append(corrector_loss.item() / model.num_iter)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return history


SCALES = (2, 3, 4)
PAPER = "Gu et al., CVPR 2019 (IKC)"


@register_model("ikc", scales=SCALES, paper=PAPER, blind=True)
def ikc(scale: int = 4, **overrides) -> IKC:
    """IKC: SFTMD 4,086,979 / 4,271,619 / 4,234,691 at x2 / x3 / x4 + predictor 430,730 + corrector 649,930."""
    return build(IKC, scale, IKCConfig(), overrides)


@register_model("ikc_tiny", scales=SCALES, paper=PAPER + ", CPU preset", blind=True)
def ikc_tiny(scale: int = 4, **overrides) -> IKC:
    # shrunk: SFTMD width 64 -> 12, blocks 16 -> 2, SFT branches 32 -> 6 (~41k parameters at x4);
    # predictor/corrector width 64 -> 8 (~20k); correction steps 7 -> 3. The loop, the SFT
    # conditioning and the PCA codes are intact.
    return build(IKC, scale, IKCConfig(num_feat=12, num_block=2, sft_feat=6, estimator_feat=8, num_iter=3), overrides)
