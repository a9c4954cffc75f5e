"""The toy-world UNet recipe: where the loss is weighted up, and which timesteps training draws."""

from __future__ import annotations

import torch

from studio.toyworld import world
from studio.toyworld.train_data import foreground_masks
from studio.toyworld.train_unet import sample_timesteps


def test_foreground_mask_covers_the_shape_on_the_latent_grid():
    left = world.Scene("red", "circle", "white", "left", size=10)
    right = world.Scene("red", "circle", "white", "right", size=10)
    masks = foreground_masks([left, right], [world.render_array(left), world.render_array(right)])
    assert masks.shape == (2, 16, 16) and masks.dtype == torch.uint8
    # the left scene's shape (x 8..28 px -> cells 2..7, grown by one) and nothing near the right edge
    assert masks[0, 8, 4] == 1 and masks[0, 8, 12] == 0 and masks[0, 0, 0] == 0
    assert masks[1, 8, 11] == 1 and masks[1, 8, 3] == 0
    # a disc of radius 10 px is about 20 latent cells; grown by one cell it stays well under half the grid
    assert 20 <= int(masks[0].sum()) <= 80


def test_foreground_mask_ignores_the_background_colour():
    scenes = [world.Scene("yellow", "square", b, "center") for b in world.BACKGROUND_NAMES]
    masks = foreground_masks(scenes, [world.render_array(s) for s in scenes])
    assert all((m == masks[0]).all() for m in masks)


def test_timesteps_keep_a_share_at_pure_noise():
    g = torch.Generator().manual_seed(0)
    t = sample_timesteps(20_000, g, 1000, power=0.6, top_share=0.3)
    assert t.min() >= 0 and t.max() == 999
    top = (t >= 975).float().mean().item()
    # 30% drawn from the top 2.5% plus the power law's own share of it (about 3%)
    assert 0.29 <= top <= 0.36, top
    none = sample_timesteps(20_000, torch.Generator().manual_seed(0), 1000, power=1.0, top_share=0.0)
    assert 0.015 <= (none >= 975).float().mean().item() <= 0.035
