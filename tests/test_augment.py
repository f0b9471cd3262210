import pytest
import torch

from imagination.augment import Cutouts


def _images(seed=0):
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_full_cutout_without_augmentation_is_the_image():
    images = _images()
    views = Cutouts(64, cutn=1, augmentations=(), min_fraction=1.0)(images)
    assert torch.allclose(views, images, atol=1e-4)


def test_flip_mirrors_the_image():
    images = _images()
    views = Cutouts(64, cutn=8, augmentations=("flip",), min_fraction=1.0,
                    generator=torch.Generator().manual_seed(3))(images)
    for k, view in enumerate(views):
        source = images[k // 8]
        assert torch.allclose(view, source, atol=1e-4) or torch.allclose(view, source.flip(-1), atol=1e-4)


def test_cutouts_are_image_major_crops_and_seeded():
    images = torch.stack([torch.zeros(3, 64, 64), torch.ones(3, 64, 64)])
    make = lambda: Cutouts(16, cutn=5, cut_pow=2.0, augmentations=("flip", "affine", "perspective"),
                           generator=torch.Generator().manual_seed(1))
    views = make()(images)
    assert views.shape == (10, 3, 16, 16)
    assert views[:5].max() < 1e-4 and views[5:].min() > 1 - 1e-4  # each view comes from its own image
    assert torch.equal(make()(images), views)  # same seed, same views


def test_gradient_flows_back_to_the_images():
    images = _images().requires_grad_()
    Cutouts(32, cutn=4, generator=torch.Generator().manual_seed(0))(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_unknown_augmentation_is_refused():
    with pytest.raises(ValueError, match="unknown augmentation"):
        Cutouts(32, augmentations=("blur",))
