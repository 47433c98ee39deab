"""DRCN: one convolution applied recursively, with supervision of every recursion and a learned ensemble.

Paper: J. Kim, J. K. Lee, K. M. Lee, "Deeply-Recursive Convolutional Network for Image
Super-Resolution", CVPR 2016 [kim2016drcn]. No official code was released (the authors' page
cv.snu.ac.kr/research/DRCN has results only); reimplementations read for this file:
icpm/super-resolution ``DRCN/model.py`` (PyTorch) and jiny2001/deeply-recursive-cnn-tf.

Three sub-networks on the bicubic-upscaled luma ``x``::

    H_0 = f_emb(x)                       embedding: 2 x [conv 3x3, ReLU], 1 -> 256 -> 256
    H_d = g(H_{d-1}),  d = 1..D           inference: ONE conv 3x3 256 -> 256 + ReLU, applied D = 16 times
    y_d = x + f_rec(H_d)                 reconstruction (shared by all d): conv 3x3 + ReLU, conv 3x3 -> 1,
                                         plus the skip connection from the input
    y   = sum_d w_d * y_d                 the output: a learned weighted average

Recursive supervision: every y_d is compared with the target, so gradients reach the
shared conv through short paths as well as the 16-deep one::

    loss = alpha * mean_d loss(y_d, target) + (1 - alpha) * loss(y, target)   (+ beta * weight decay)

with alpha decaying to 0 during training (:meth:`DRCN.training_loss`; the weight decay is the
optimiser's job: ``torch.optim.Adam(..., weight_decay=...)``). Parameters: 1,775,121, counting the
shared conv and the shared reconstruction once and the 16 ensemble weights (``nn.Parameter``: the
icpm port keeps them in a plain tensor, so it never learns them and counts 1,775,105). The luma-only
processing is the paper's; :class:`~srlib.models.common.YChannelSR` upscales the chroma bicubically
so the model maps RGB to RGB like every srlib model.

Choices where the paper is silent or ambiguous:

* The ensemble weights start at 1/D (a plain mean, as icpm and jiny2001) and are used as the
  paper writes them, without dividing by their sum (icpm and jiny2001 divide). Since every y_d
  contains the input, the weights' sum scales the skip too; it stays near 1 (0.995 after 300 steps of
  ``drcn_tiny``).
* No ReLU on the reconstruction's output conv: it predicts a residual, which can be negative.
* Initialisation: He-normal (fan-in) for every conv, zero biases, except the recursion conv, which
  starts as the identity (the centre tap of its 3x3 kernel is the identity matrix), as in
  jiny2001's ``diagonal_weight``. With He init there, a small DRCN shrinks its recursion to zero in
  its first hundred steps (the quickest way to silence the noisy initial residuals) and never
  recovers; from the identity, every H_d starts equal to H_0 and training refines them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import register_model
from .common import YChannelSR, build, conv3x3


@dataclass
class DRCNConfig:
    num_feat: int = 256  # width of embedding, inference and reconstruction (paper: 256 filters)
    num_recursion: int = 16  # D: applications of the shared inference conv (paper: 16)
    alpha_decay_until: float = 0.25  # fraction of training over which alpha goes linearly from 1 to 0
    # (icpm: 25 of ~100 epochs; the paper decays it without giving a schedule)


class DRCN(YChannelSR):
    """DRCN on the luma of the bicubic-upscaled image, RGB in and out.

    Args:
        scale: upscaling factor of the internal bicubic pre-upsampling (integer >= 2).
        num_feat: channels of every hidden layer. Default: 256.
        num_recursion: D, how many times the shared inference conv is applied. Default: 16.
        alpha_decay_until: fraction of training (``progress`` in :meth:`training_loss`) after which
            alpha, the weight of the intermediate losses, reaches 0. Default: 0.25.

    Input (N, 3, h, w) RGB in [0, 1]; output (N, 3, scale*h, scale*w), not clamped.

    Example:
        >>> import torch
        >>> net = DRCN(scale=2, num_feat=8, num_recursion=3)
        >>> net(torch.rand(1, 3, 6, 5)).shape
        torch.Size([1, 3, 12, 10])
        >>> len(net.forward_recursions(torch.rand(1, 1, 6, 5))[0])  # one prediction per recursion
        3
    """

    def __init__(self, scale: int, num_feat: int = 256, num_recursion: int = 16, alpha_decay_until: float = 0.25):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"DRCN needs an integer scale >= 2 (registered: 2, 3, 4), got {scale!r}")
        if num_recursion < 1:
            raise ValueError(f"num_recursion must be >= 1, got {num_recursion}")
        if not 0 <= alpha_decay_until <= 1:
            raise ValueError(f"alpha_decay_until is a fraction of training in [0, 1], got {alpha_decay_until}")
        self.scale, self.num_recursion, self.alpha_decay_until = scale, num_recursion, alpha_decay_until
        self.embedding = nn.Sequential(conv3x3(1, num_feat), nn.ReLU(inplace=True),
                                       conv3x3(num_feat, num_feat), nn.ReLU(inplace=True))
        # The one conv of the inference net: the same module is applied num_recursion times.
        self.recursion = nn.Sequential(conv3x3(num_feat, num_feat), nn.ReLU(inplace=True))
        self.reconstruction = nn.Sequential(conv3x3(num_feat, num_feat), nn.ReLU(inplace=True), conv3x3(num_feat, 1))
        # w_d, learned; 1/D makes the untrained output the plain mean of the predictions.
        self.ensemble_weights = nn.Parameter(torch.full((num_recursion,), 1.0 / num_recursion))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. (fan-in, as Caffe's MSRA filler), zero biases
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        # The recursion starts as the identity (jiny2001's "diagonal" init): ReLU(I * H) = H for H >= 0,
        # so 16 applications neither explode nor vanish, and the shared conv learns a correction.
        with torch.no_grad():
            self.recursion[0].weight.zero_()
            self.recursion[0].weight[:, :, 1, 1].copy_(torch.eye(num_feat))

    def forward_recursions(self, y: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """All predictions: LR luma (N, 1, h, w) -> ([y_1 .. y_D], y), each (N, 1, scale*h, scale*w)."""
        from ..degrade import upscale_bicubic

        x = upscale_bicubic(y, self.scale)  # pre-upsampling: (N, 1, s*h, s*w)
        h = self.embedding(x)  # H_0: (N, F, s*h, s*w)
        predictions = []
        for _ in range(self.num_recursion):
            h = self.recursion(h)  # H_d = g(H_{d-1}), shared weights
            predictions.append(x + self.reconstruction(h))  # y_d, skip connection from the input
        stacked = torch.stack(predictions)  # (D, N, 1, s*h, s*w)
        output = torch.einsum("d,dnchw->nchw", self.ensemble_weights.to(stacked.dtype), stacked)
        return predictions, output

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """LR luma (N, 1, h, w) -> SR luma (N, 1, scale*h, scale*w), the weighted ensemble."""
        return self.forward_recursions(y)[1]

    def alpha(self, progress: float) -> float:
        """Weight of the intermediate losses at ``progress`` in [0, 1]: 1 at the start, linearly to 0."""
        if self.alpha_decay_until == 0:
            return 0.0
        return max(0.0, 1.0 - progress / self.alpha_decay_until)

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor, criterion, progress: float = 0.0) -> torch.Tensor:
        """Recursive supervision on Y (the paper's loss without the weight decay, which the optimiser applies).

        Args:
            lr: LR RGB (N, 3, h, w) in [0, 1]; hr: HR RGB (N, 3, scale*h, scale*w) in [0, 1].
            criterion: ``loss(pred, target)``, e.g. MSE as in the paper (``srlib.train.fit`` passes its
                ``loss``).
            progress: fraction of training done, in [0, 1]; sets alpha (see :meth:`alpha`).

        Returns:
            ``alpha * mean_d criterion(y_d, Y_hr) + (1 - alpha) * criterion(y, Y_hr)``.
        """
        from ..color import rgb_to_y
        from .common import split_luma

        target = rgb_to_y(hr).float()
        predictions, output = self.forward_recursions(split_luma(lr)[0])
        alpha = self.alpha(progress)
        final = criterion(output.float(), target)
        if alpha == 0.0:
            return final
        intermediate = torch.stack([criterion(p.float(), target) for p in predictions]).mean()
        return alpha * intermediate + (1.0 - alpha) * final


SCALES = (2, 3, 4)
PAPER = "Kim et al., CVPR 2016 (DRCN)"


@register_model("drcn", scales=SCALES, paper=PAPER)
def drcn(scale: int = 4, **overrides) -> DRCN:
    """The paper's DRCN (256 filters, 16 recursions): 1,775,121 parameters at any scale."""
    return build(DRCN, scale, DRCNConfig(), overrides)


@register_model("drcn_tiny", scales=SCALES, paper=PAPER + ", CPU preset")
def drcn_tiny(scale: int = 4, **overrides) -> DRCN:
    # shrunk: width 256 -> 16, recursions 16 -> 4 (the idea, recursion + supervision + ensemble, is intact)
    return build(DRCN, scale, DRCNConfig(num_feat=16, num_recursion=4), overrides)
