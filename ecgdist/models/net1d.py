"""Net1D, the RegNet-like 1-D CNN of ECGFounder, laid out for checkpoint compatibility.

Module names and shapes match the released ECGFounder checkpoint (509 state-dict entries),
so its weights load strictly. BatchNorm and dropout modules are built because the
checkpoint holds their weights, but the released configuration never applies them; they
stay off unless asked for. Stochastic depth is our addition (the post-training strategy).
Input (B, C, L) with C leads; the 12-lead model expects 12 x 5000 at 500 Hz.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ecgdist.models.drop_path import linear_rates, make_drop_path

ECGFOUNDER_WIDTHS = (64, 160, 160, 400, 400, 1024, 1024)
ECGFOUNDER_BLOCKS = (2, 2, 2, 3, 3, 4, 4)
ECGFOUNDER_CLASSES = 150


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow-style 'same' padding: output length ceil(L / stride), extra pad on the right."""
    total = max(0, (math.ceil(length / stride) - 1) * stride + kernel - length)
    return total // 2, total - total // 2


class SameConv1d(nn.Module):
    """Conv1d with 'same' padding computed from the input length (the checkpoint's ``*.conv``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        return conv(F.pad(x, same_padding(x.shape[-1], conv.kernel_size[0], conv.stride[0])))


class SamePool1d(nn.Module):
    """Max-pool with kernel = stride, zero-padded on the right by kernel - 1 as in the original."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.kernel - 1
        return F.max_pool1d(F.pad(x, (total // 2, total - total // 2)), self.kernel)


class Block(nn.Module):
    """Pre-activation bottleneck (1x1, grouped k, 1x1) with squeeze-excitation and shortcut.

    Args:
        in_ch, out_ch: channels in and out; the shortcut zero-pads channels (centred).
        kernel: kernel of the grouped convolution, which carries the stride.
        stride: 2 downsamples both branches (shortcut by max-pool).
        groups_width: channels per group of the grouped convolution.
        first: the very first block of the network skips its first activation.
        use_bn, dropout: the released model uses neither.
        drop_path: stochastic depth rate of this block's residual branch.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, groups_width: int,
                 first: bool = False, use_bn: bool = False, dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.first, self.use_bn, self.in_ch, self.out_ch = first, use_bn, in_ch, out_ch
        self.bn1 = nn.BatchNorm1d(in_ch)
        self.conv1 = SameConv1d(in_ch, out_ch, 1)
        self.bn2 = nn.BatchNorm1d(out_ch)
        self.conv2 = SameConv1d(out_ch, out_ch, kernel, stride, groups=out_ch // groups_width)
        self.bn3 = nn.BatchNorm1d(out_ch)
        self.conv3 = SameConv1d(out_ch, out_ch, 1)
        self.se_fc1 = nn.Linear(out_ch, out_ch // 2)
        self.se_fc2 = nn.Linear(out_ch // 2, out_ch)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut_pool = SamePool1d(stride) if stride > 1 else nn.Identity()
        self.drop_path = make_drop_path(drop_path)

    def _pre(self, x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
        return self.dropout(F.silu(bn(x) if self.use_bn else x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x if self.first else self._pre(x, self.bn1))
        out = self.conv2(self._pre(out, self.bn2))
        out = self.conv3(self._pre(out, self.bn3))
        gate = torch.sigmoid(self.se_fc2(F.silu(self.se_fc1(out.mean(-1)))))
        out = out * gate.unsqueeze(-1)
        shortcut = self.shortcut_pool(x)
        if self.out_ch != self.in_ch:
            extra = self.out_ch - self.in_ch
            shortcut = F.pad(shortcut, (0, 0, extra // 2, extra - extra // 2))
        return self.drop_path(out) + shortcut


class Stage(nn.Module):
    def __init__(self, blocks: list[Block]) -> None:
        super().__init__()
        self.block_list = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block_list:
            x = block(x)
        return x


class Net1D(nn.Module):
    """ECGFounder's Net1D.

    Args:
        in_leads: input channels (12, or 1 for the lead-I model).
        num_classes: outputs of the linear head (150 in the released model).
        widths, blocks: channels and block count per stage.
        base_width: channels of the stem convolution.
        kernel: kernel size of the stem and the grouped convolutions.
        groups_width: channels per group in the grouped convolutions.
        use_bn, dropout: off in the released configuration.
        drop_path: stochastic depth rate of the last block; earlier blocks rise linearly to it.
    """

    def __init__(self, in_leads: int = 12, num_classes: int = ECGFOUNDER_CLASSES,
                 widths: tuple[int, ...] = ECGFOUNDER_WIDTHS, blocks: tuple[int, ...] = ECGFOUNDER_BLOCKS,
                 base_width: int = 64, kernel: int = 16, groups_width: int = 16,
                 use_bn: bool = False, dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.use_bn = use_bn
        self.first_conv = SameConv1d(in_leads, base_width, kernel, stride=2)
        self.first_bn = nn.BatchNorm1d(base_width)
        rates = iter(linear_rates(drop_path, sum(blocks)))
        stages, in_ch = [], base_width
        for s, (width, count) in enumerate(zip(widths, blocks)):
            stage_blocks = [Block(in_ch if b == 0 else width, width, kernel, 2 if b == 0 else 1, groups_width,
                                  first=(s == 0 and b == 0), use_bn=use_bn, dropout=dropout, drop_path=next(rates))
                            for b in range(count)]
            stages.append(Stage(stage_blocks))
            in_ch = width
        self.stage_list = nn.ModuleList(stages)
        self.num_features = in_ch
        self.dense = nn.Linear(in_ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, D, L / 256) feature map."""
        out = self.first_conv(x)
        out = F.silu(self.first_bn(out) if self.use_bn else out)
        for stage in self.stage_list:
            out = stage(out)
        return out

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The mean over time of the last stage, then the head; ``pre_logits``: the pooled (B, D)
        features, the one feature interface embeddings and probes use."""
        pooled = features.mean(-1)
        return pooled if pre_logits else self.dense(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        """The head a fine-tune starts fresh and a linear probe trains alone."""
        return self.dense

    def no_weight_decay(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.ndim <= 1}

    @property
    def num_layers(self) -> int:
        """Layer ids for layer-wise LR decay: stem 0, stages 1..S, head S + 1."""
        return len(self.stage_list) + 2

    def layer_id(self, name: str) -> int:
        if name.startswith("stage_list."):
            return int(name.split(".")[1]) + 1
        return self.num_layers - 1 if name.startswith("dense.") else 0
