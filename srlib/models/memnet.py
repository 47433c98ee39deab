"""MemNet: memory blocks of recursive units (shared weights) and gate units, with multi-supervision.

Paper: Y. Tai, J. Yang, X. Liu, C. Xu, "MemNet: A Persistent Memory Network for Image Restoration",
ICCV 2017 [tai2017memnet]. Official code (Caffe): tyshiwo/MemNet
(``caffe_files/MemNet_M6R6_80C64/MemNet_M6R6_80C64_train.prototxt``, ``test/.../*_deploy.prototxt``).
The popular PyTorch port Vandermode/pytorch-MemNet shares no weights and drops the multi-supervision
(2.9M parameters, 4x the original).

Every layer is pre-activation "BRC" = BatchNorm -> ReLU -> conv (with bias). On the bicubic-upscaled
luma ``x``, with C = 64 channels, M = 6 memory blocks of R = 6 recursions::

    B_0 = FENet(x)                               BRC 3x3, 1 -> C (the BN/ReLU act on the input itself)
    B_m = MemoryBlock_m(B_{m-1}), m = 1..M

    MemoryBlock_m:  H_0 = B_{m-1}
                    H_r = H_{r-1} + BRC_b(BRC_a(H_{r-1})), r = 1..R     recursive unit: the two convs are
                                                                         SHARED by the R recursions, the BNs not
                    B_m = Gate([B_0, ..., B_{m-1}, H_1, ..., H_R])      gate unit: BRC 1x1, (m + R)*C -> C
                          long-term memory ----^      ^---- short-term memory

    y_m = x + ReconNet_m(B_m)                    BRC 3x3, C -> 1: the conv is SHARED by the M branches,
                                                 the BN is per branch
    y   = sum_m w_m * y_m                         M learned scalar weights

Multi-supervision: every y_m and the weighted y are compared with the HR luma; the official solver
gives the M + 1 Euclidean losses equal weights (``loss_weight: 1``), so
:meth:`MemNet.training_loss` returns their mean. Parameters (M6R6C64): 695,497 at any scale,
678,209 of them conv weights and biases, the rest BN affine parameters (BN running statistics are
buffers) and the 6 output weights. One model serves x2, x3 and x4 in the paper (trained on a mix);
here ``scale`` only sets the internal bicubic pre-upsampling. Luma only, as the paper:
:class:`~srlib.models.common.YChannelSR` upscales the chroma bicubically.

Choices where the official code differs or is silent:

* The output weights start at 1/M (the plain mean of the branches). Caffe's ``Scale`` layer
  defaults to 1, which makes the untrained output the *sum* of six images; the paper only says the
  weights are learned.
* Initialisation as the prototxt: He-normal (Caffe's MSRA filler, fan-in), zero biases; BN weight 1,
  bias 0; except the shared reconstruction conv, which starts at N(0, 0.001). With the MSRA filler on
  unit-variance BN features, the untrained residual has a std of about 0.4 on a [0, 1] image and a
  short run spends its steps removing it (300-step CPU runs of the tiny preset ended below bicubic);
  from the small start the untrained MemNet is close to bicubic and such a run gains about 0.3 dB
  over it. The official solver trains biases at 0.1x the learning rate (an optimiser setting).
* Training notes (official solver): SGD lr 0.1, momentum 0.9, weight decay 1e-4, "adjustable"
  gradient clipping 0.01 / lr, 31x31 patches of 291 images at x2/x3/x4 mixed, batch 32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build, conv3x3


@dataclass
class MemNetConfig:
    num_feat: int = 64  # C: channels of every layer (paper: 64)
    num_memblock: int = 6  # M: memory blocks, and supervised outputs (paper: M6)
    num_resblock: int = 6  # R: recursions of the shared residual block inside each memory block (paper: R6)


def bn_relu(num_ch: int) -> nn.Sequential:
    """The 'BR' of a pre-activation BRC layer (the conv is kept apart so it can be shared)."""
    return nn.Sequential(nn.BatchNorm2d(num_ch), nn.ReLU(inplace=True))


class MemoryBlock(nn.Module):
    """A recursive unit (one residual block applied R times) followed by a gate unit.

    Args:
        num_feat: C. Default: 64.
        num_resblock: R, recursions. Default: 6.
        num_memory: m, feature maps in the long-term memory this block receives (the FENet output and
            the m - 1 earlier blocks' outputs). Default: 1.

    ``forward(memory)``: list of m tensors (N, C, h, w), the last being this block's input ->
    (N, C, h, w), the gate unit's output.
    """

    def __init__(self, num_feat: int = 64, num_resblock: int = 6, num_memory: int = 1):
        super().__init__()
        self.num_memory = num_memory
        # one pair of convs, applied in every recursion: the weight sharing of the recursive unit
        self.conv_a, self.conv_b = conv3x3(num_feat, num_feat), conv3x3(num_feat, num_feat)
        # ... but each recursion has its own batch norms (the prototxt names BN layers per recursion)
        self.pre_a = nn.ModuleList([bn_relu(num_feat) for _ in range(num_resblock)])
        self.pre_b = nn.ModuleList([bn_relu(num_feat) for _ in range(num_resblock)])
        self.gate = nn.Sequential(bn_relu((num_memory + num_resblock) * num_feat),
                                  nn.Conv2d((num_memory + num_resblock) * num_feat, num_feat, 1))

    def forward(self, memory: list[torch.Tensor]) -> torch.Tensor:
        if len(memory) != self.num_memory:
            raise ValueError(f"this memory block was built for {self.num_memory} long-term inputs, got {len(memory)}")
        h, short_term = memory[-1], []
        for pre_a, pre_b in zip(self.pre_a, self.pre_b):
            h = h + self.conv_b(pre_b(self.conv_a(pre_a(h))))  # H_r, shared convs
            short_term.append(h)
        return self.gate(torch.cat(memory + short_term, dim=1))  # ((m + R)*C) -> C channels


class MemNet(YChannelSR):
    """MemNet on the luma of the bicubic-upscaled image, RGB in and out.

    Args:
        scale: upscaling factor of the internal bicubic pre-upsampling (integer >= 2).
        num_feat: C. Default: 64.
        num_memblock: M, memory blocks and supervised reconstructions. Default: 6.
        num_resblock: R, recursions per memory block. Default: 6.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped: the weighted
    average of the M reconstructions (:meth:`forward_memories` gives all of them).

    Example:
        >>> import torch
        >>> net = MemNet(scale=2, num_feat=4, num_memblock=2, num_resblock=2)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
        >>> len(net.forward_memories(torch.rand(1, 1, 6, 5))[0])  # one reconstruction per memory block
        2
    """

    def __init__(self, scale: int, num_feat: int = 64, num_memblock: int = 6, num_resblock: int = 6):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"MemNet needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        self.scale = scale
        self.feature = nn.Sequential(bn_relu(1), conv3x3(1, num_feat))  # FENet: BRC on the input luma
        self.blocks = nn.ModuleList([MemoryBlock(num_feat, num_resblock, num_memory=m + 1)
                                     for m in range(num_memblock)])
        self.recon_pre = nn.ModuleList([bn_relu(num_feat) for _ in range(num_memblock)])  # per-branch BN
        self.recon_conv = conv3x3(num_feat, 1)  # shared by the M branches ('Recon_w' / 'Recon_b')
        self.output_weights = nn.Parameter(torch.full((num_memblock,), 1.0 / num_memblock))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # Caffe's MSRA filler (fan-in), zero biases
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.recon_conv.weight, 0.0, 1e-3)  # small residuals: untrained MemNet ~ bicubic

    def forward_memories(self, y: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """All reconstructions: LR luma (N, 1, h, w) -> ([y_1 .. y_M], y), each (N, 1, scale*h, scale*w)."""
        from ..degrade import upscale_bicubic

        x = upscale_bicubic(y, self.scale)  # pre-upsampling: (N, 1, s*h, s*w)
        memory = [self.feature(x)]  # B_0, then B_1 .. B_M
        for block in self.blocks:
            memory.append(block(memory))
        predictions = [x + self.recon_conv(pre(b)) for pre, b in zip(self.recon_pre, memory[1:])]
        stacked = torch.stack(predictions)  # (M, N, 1, s*h, s*w)
        output = torch.einsum("m,mnchw->nchw", self.output_weights.to(stacked.dtype), stacked)
        return predictions, output

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w), the weighted average."""
        return self.forward_memories(y)[1]

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor, criterion, progress: float = 0.0) -> torch.Tensor:
        """Multi-supervision on Y: the mean of the M branch losses and the loss of the weighted output.

        Args:
            lr: LR RGB (N, 3, h, w) in [0, 1]; hr: HR RGB (N, 3, scale*h, scale*w) in [0, 1].
            criterion: ``loss(pred, target)``; the paper uses MSE (``srlib.train.fit`` passes its ``loss``).
            progress: fraction of training done; unused (the weights are constant), kept for ``fit``.

        Returns:
            ``(criterion(y, Y_hr) + sum_m criterion(y_m, Y_hr)) / (M + 1)``.
        """
        from ..color import rgb_to_y
        from .common import split_luma

        target = rgb_to_y(hr).float()
        predictions, output = self.forward_memories(split_luma(lr)[0])
        losses = [criterion(p.float(), target) for p in predictions] + [criterion(output.float(), target)]
        return torch.stack(losses).mean()


SCALES = (2, 3, 4)
PAPER = "Tai et al., ICCV 2017 (MemNet)"


@register_model("memnet", scales=SCALES, paper=PAPER)
def memnet(scale: int = 4, **overrides) -> MemNet:
    """The paper's MemNet M6R6 (64 channels): 695,497 parameters at any scale."""
    return build(MemNet, scale, MemNetConfig(), overrides)


@register_model("memnet_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def memnet_tiny(scale: int = 4, **overrides) -> MemNet:
    # shrunk: channels 64 -> 16, memory blocks 6 -> 3, recursions 6 -> 2 (it runs at HR resolution, so
    # this is ~150x fewer multiply-adds; sharing, gates and multi-supervision intact)
    return build(MemNet, scale, MemNetConfig(num_feat=16, num_memblock=3, num_resblock=2), overrides)
