import pytest
import torch
import torch.nn.functional as F

from imagination.errors import UserError
from imagination.objectives import WeightedText, parse_prompt, spherical_distance, total_variation


def test_parse_prompt_weights_and_defaults():
    assert parse_prompt("snowy mountains") == [WeightedText("snowy mountains", 1.0)]
    assert parse_prompt(" a:1 | b : -0.5 |c") == [WeightedText("a", 1.0), WeightedText("b", -0.5), WeightedText("c", 1.0)]
    assert parse_prompt("白日依山尽：黄河:2") == [WeightedText("白日依山尽：黄河", 2.0)]


@pytest.mark.parametrize("spec, message", [
    ("", "the prompt is empty"),
    ("  |  ", "the prompt is empty"),
    ("a||b", "empty part"),
    ("sea:abc", "weight 'abc' in 'sea:abc' is not a number"),
    ("sea:", "weight '' in 'sea:' is not a number"),
    (":2", "has a weight but no text"),
    ("sea:nan", "must be a number from -100 to 100"),
    ("a:1e308|b:1e308", "weight '1e308' in 'a:1e308' must be a number from -100 to 100"),  # the loss overflowed to NaN
    ("a:0", "every weight in 'a:0' is 0: nothing to imagine"),
    ("a:0|b:-0", "nothing to imagine"),
])
def test_parse_prompt_rejects_bad_input_with_its_message(spec, message):
    with pytest.raises(UserError, match=message):
        parse_prompt(spec)


def test_spherical_distance_is_zero_for_equal_and_grows_with_angle():
    a = F.normalize(torch.randn(5, 8), dim=-1)
    d = spherical_distance(a, a)  # (5, 5)
    assert torch.allclose(d.diagonal(), torch.zeros(5), atol=1e-3)
    # 2 * (angle / 2)^2 for unit vectors
    angle = torch.arccos((a @ a.T).clamp(-1, 1))
    assert torch.allclose(d, 2 * (angle / 2) ** 2, atol=1e-4)


def test_total_variation_prefers_smooth_images():
    smooth = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)
    noisy = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert total_variation(smooth) < total_variation(noisy) / 5


class _Fixed:
    """Stands in for an encoder in `Targets`: only identity matters there."""


def _targets(embeddings, weights):
    from imagination.objectives import Targets

    return Targets(_Fixed(), [f"t{i}" for i in range(len(embeddings))], embeddings, weights)


def test_mean_weight_moves_the_loss_to_the_mean_of_the_cutouts():
    target = F.normalize(torch.tensor([[1.0, 0.0, 0.0]]), dim=-1)
    # Two cutouts that disagree with the prompt one each way but average onto it.
    views = F.normalize(torch.tensor([[[1.0, 1.0, 0.0], [1.0, -1.0, 0.0]]]), dim=-1)  # (B=1, cutn=2, D)
    targets = _targets(target, torch.ones(1, 1))
    each, _ = targets.loss(views, "spherical", mean_weight=0.0)
    whole, _ = targets.loss(views, "spherical", mean_weight=1.0)
    half, _ = targets.loss(views, "spherical", mean_weight=0.5)
    assert each.item() > 0.1 and whole.abs().item() < 1e-5  # the mean embedding is the target itself
    assert torch.allclose(half, (each + whole) / 2)


def test_grey_pull_is_zero_at_grey_and_grows_with_saturation():
    from imagination.objectives import grey_pull

    grey, saturated = torch.full((1, 3, 8, 8), 0.5), torch.zeros(1, 3, 8, 8)
    assert grey_pull(grey).item() == 0 and grey_pull(saturated).item() == pytest.approx(0.25)
