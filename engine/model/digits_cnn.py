"""The demo's small source CNN: a stem, three blocks with BatchNorm, a pool and a linear head.

Small enough to train on a CPU in seconds, structured enough that the layer checklist is worth looking at.
Its pretrained weights (trained on handwritten digits 0-4 only) ship in ``resources/``.
"""

from __future__ import annotations

import json
from typing import Any

from torch import nn

from engine.io.locations import RESOURCES

DEMO_ARCH = "thaw_digits_cnn"
SOURCE_WEIGHTS = RESOURCES / "digits_cnn_0to4.safetensors"
SOURCE_META = RESOURCES / "digits_cnn_0to4.json"
INPUT_SIZE = 32
POOL_GRID = 2  # the pool keeps a 2x2 grid: where a stroke is matters for telling digits apart


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DigitsCNN(nn.Module):
    """3 x 32 x 32 images -> `num_classes` logits. Blocks halve the resolution: 32 -> 16 -> 8 -> 4."""

    def __init__(self, num_classes: int = 5, widths: tuple[int, int, int, int] = (8, 16, 32, 128)) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(*_conv_bn_relu(3, w0))
        self.block1 = nn.Sequential(*_conv_bn_relu(w0, w1), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*_conv_bn_relu(w1, w2), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*_conv_bn_relu(w2, w3), nn.MaxPool2d(2))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(POOL_GRID), nn.Flatten())
        self.fc = nn.Linear(w3 * POOL_GRID * POOL_GRID, num_classes)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return self.fc(self.pool(x))


def load_meta() -> dict[str, Any]:
    """The shipped source model's metadata: classes, input size, normalisation, training images."""
    return json.loads(SOURCE_META.read_text(encoding="utf-8"))
