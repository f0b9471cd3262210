import pytest
import torch

from imagination.augment import Cutouts, ImageJitter, blur


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


def _dot_image(side=64, at=(20, 40)):
    """Black image with a white 3x3 dot at (x, y)."""
    image = torch.zeros(1, 3, side, side)
    x, y = at
    image[..., y - 1:y + 2, x - 1:x + 2] = 1.0
    return image


def _dot_position(view):
    weights = view.mean(0)
    ys, xs = torch.meshgrid(torch.arange(view.shape[-2]), torch.arange(view.shape[-1]), indexing="ij")
    total = weights.sum()
    return (weights * xs).sum() / total, (weights * ys).sum() / total


def test_jitter_moves_the_whole_image_the_same_way_for_all_its_cutouts():
    cut = Cutouts(64, cutn=6, augmentations=(), min_fraction=1.0, generator=torch.Generator().manual_seed(2),
                  jitter=ImageJitter(jitter=8))
    first, second = cut(_dot_image()), cut(_dot_image())  # two steps
    positions = [_dot_position(v) for v in first]
    assert all(abs(p[0] - positions[0][0]) < 1e-3 and abs(p[1] - positions[0][1]) < 1e-3 for p in positions)
    x, y = positions[0]
    assert abs(x - 20) <= 8.5 and abs(y - 40) <= 8.5
    assert abs(_dot_position(second[0])[0] - x) > 1e-2  # a new shift each step


def test_padding_shows_grey_around_the_image():
    views = Cutouts(64 + 24, cutn=1, augmentations=(), min_fraction=1.0, jitter=ImageJitter(pad=12))(
        torch.zeros(1, 3, 64, 64))
    assert torch.allclose(views[0, :, :10, :], torch.full((3, 10, 88), 0.5), atol=1e-4)  # the grey frame
    assert views[0, :, 20:68, 20:68].abs().max() < 1e-4  # the image inside it


def test_scale_and_rotation_are_about_the_centre():
    cut = Cutouts(64, cutn=1, augmentations=(), min_fraction=1.0, jitter=ImageJitter(scale_min=0.5, scale_max=0.5))
    view = cut(_dot_image(at=(48, 32)))[0]  # 16.5 px right of the centre at 31.5
    x, y = _dot_position(view[:, 16:48, 16:48])  # the image shrinks into the central half (reflections outside)
    assert abs(x + 16 - (31.5 + 16.5 * 0.5)) < 0.6 and abs(y + 16 - 32) < 0.6
    moved = []
    for seed in range(4):
        turned = Cutouts(64, cutn=1, augmentations=(), min_fraction=1.0, jitter=ImageJitter(rotate=90),
                         generator=torch.Generator().manual_seed(seed))(_dot_image(at=(48, 32)))[0]
        x, y = _dot_position(turned)
        assert abs(((x - 31.5) ** 2 + (y - 31.5) ** 2) ** 0.5 - 16.5) < 0.8  # the same radius ...
        moved.append(((x - 48) ** 2 + (y - 32) ** 2) ** 0.5)
    assert max(moved) > 10  # ... at other angles: without the rotation the dot would stay put


def test_blur_softens_and_leaves_sharp_images_alone_at_zero():
    image = _dot_image()
    assert torch.equal(blur(image, 0.0), image)
    blurred = blur(image, 2.0)
    assert blurred.max() < 0.5 and abs(blurred.sum() - image.sum()) / image.sum() < 0.01
