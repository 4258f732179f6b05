"""Deep SVDD loss pieces (eq. 7, Ruff et al.)."""

import pytest
import torch

from iaead_core.methods.svdd import (fix_centre, one_class_loss, radius_quantile,
                                     soft_boundary_loss, squared_distances)
def test_squared_distances():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert squared_distances(z, torch.tensor([0.0, 0.0])).tolist() == [0.0, 25.0]


def test_nu_one_identity_equals_mean_squared_distance():
    # docs/method.md §2: with ν = 1, R = min distance, so L_svdd == mean ||z − c||² exactly.
    torch.manual_seed(0)
    z, c = torch.randn(64, 8), torch.randn(8)
    d2 = squared_distances(z, c)
    R = radius_quantile(d2, nu=1.0)
    assert R == pytest.approx(d2.sqrt().min().item(), rel=1e-6)
    loss = soft_boundary_loss(d2, R, nu=1.0)
    assert loss.item() == pytest.approx(d2.mean().item(), rel=1e-6)
    assert one_class_loss(d2).item() == pytest.approx(d2.mean().item(), rel=1e-6)


def test_soft_boundary_hand_computed():
    d2 = torch.tensor([1.0, 4.0, 9.0, 16.0])
    # R = 2: R² + 1/(ν n) Σ max(0, d² − 4) = 4 + (0 + 0 + 5 + 12) / (0.5 · 4) = 12.5
    assert soft_boundary_loss(d2, 2.0, 0.5).item() == pytest.approx(12.5)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        soft_boundary_loss(d2, 2.0, 0.0)


def test_radius_is_one_minus_nu_quantile():
    d2 = torch.arange(1, 11, dtype=torch.float32) ** 2  # distances 1..10
    assert radius_quantile(d2, 0.1) == pytest.approx(torch.quantile(torch.arange(1.0, 11.0), 0.9).item())
    assert radius_quantile(d2, 0.5) == pytest.approx(5.5)


def test_centre_fix_pushes_small_coordinates_to_point_one():
    c = torch.tensor([0.5, 0.05, -0.05, 0.0, -0.3, 0.1])
    assert fix_centre(c).tolist() == pytest.approx([0.5, 0.1, -0.1, 0.1, -0.3, 0.1])
