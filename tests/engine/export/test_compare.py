"""The rule an exported graph is held to: PyTorch's float32 logits within rtol 1e-3 / atol 1e-4, or within twice
PyTorch's own float32 error against float64 where that is larger (never more than 1e-3 of the largest logit),
and the same top class."""

from __future__ import annotations

import numpy as np
import torch
import torchvision
from torch import nn

from engine.export.graph import NOISE_CAP, Reference, compare, reference


def fixed(want: np.ndarray, noise: float) -> Reference:
    return Reference([torch.zeros(len(want), 3, 8, 8)], [want.astype(np.float32)], noise, (len(want),))


def test_within_rtol_atol_passes_and_beyond_fails():
    want = np.array([[10.0, -2.0, 0.0]])
    assert compare("x", lambda a: want + [[0.009, 0.0019, 0.00009]], fixed(want, 0.0)).passed
    check = compare("x", lambda a: want + [[0.0, 0.0, 0.0002]], fixed(want, 0.0))  # 2e-4 where atol is 1e-4
    assert not check.passed and check.max_rel_excess > 1.9


def test_pytorchs_own_float32_error_widens_the_tolerance_twice_over():
    want = np.array([[0.0, 1.0]])
    assert compare("x", lambda a: want + 1.9e-3, fixed(want, 1e-3)).passed
    assert not compare("x", lambda a: want + 2.1e-3, fixed(want, 1e-3)).passed


def test_a_nan_or_another_top_class_never_passes():
    want = np.array([[1.0, 2.0]])
    assert not compare("x", lambda a: np.array([[np.nan, 2.0]]), fixed(want, 1e-3)).passed
    swapped = compare("x", lambda a: np.array([[2.0, 1.0]]), fixed(want, 10.0))
    assert not swapped.same_top1 and not swapped.passed


def test_the_float64_pass_measures_rounding_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.randn(6, 3, 32, 32)
    with torch.inference_mode():
        before = model(x)
    ref = reference(model, x)
    assert 0 < ref.noise < 1e-4 and len(ref.parts) == 6 + 2  # six of one, two of three
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.inference_mode():
        assert torch.equal(model(x), before)


class Changing(nn.Module):
    """Answers differently at every call: its float64 pass differs by far more than rounding."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        self.calls += 1
        return self.linear(x.flatten(1)[:, :4]) + self.calls


def test_a_model_whose_answers_change_gets_no_more_than_the_cap():
    model = Changing()
    ref = reference(model, torch.randn(3, 3, 2, 2))
    largest = max(float(np.abs(a).max()) for a in ref.logits)
    assert ref.noise == NOISE_CAP * max(1.0, largest)
