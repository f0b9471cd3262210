"""The learning-rate schedule and the plateau rule of the loop."""

import pytest

from imagination.loop import Plateau, Schedule


def test_constant_schedule_keeps_the_rate_after_its_warm_up():
    schedule = Schedule("constant", warmup=0.1)
    assert [schedule.factor(s, 100) for s in (1, 5, 10)] == pytest.approx([0.1, 0.5, 1.0])
    assert schedule.factor(11, 100) == schedule.factor(100, 100) == 1.0
    assert Schedule().factor(1, 100) == 1.0  # no warm-up: full rate at once


def test_cosine_schedule_decays_from_full_to_the_floor():
    schedule = Schedule("cosine", warmup=0.0, floor=0.1)
    values = [schedule.factor(s, 50) for s in range(1, 51)]
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values, values[1:]))  # never rises
    assert schedule.factor(25, 49) == pytest.approx(0.55, abs=0.02)  # half-way: half-way down


def test_warm_up_then_cosine():
    schedule = Schedule("cosine", warmup=0.2, floor=0.0)
    assert schedule.factor(10, 100) == pytest.approx(0.5)
    assert schedule.factor(20, 100) == pytest.approx(1.0)
    assert schedule.factor(100, 100) == pytest.approx(0.0)


def _feed(plateau, losses):
    for step, loss in enumerate(losses, 1):
        if plateau.reached(loss):
            return step
    return None


def test_plateau_stops_on_a_flat_noisy_curve_and_not_on_a_falling_one():
    noise = [0.01 * ((i * 7919) % 13 - 6) / 6 for i in range(200)]  # deterministic jitter of +-1%
    flat = [1.0 + n for n in noise]
    falling = [1.0 - 0.004 * i + n for i, n in enumerate(noise)]  # still improving 0.4% of the loss a step
    assert _feed(Plateau(window=15, min_gain=0.005, min_steps=30), flat) == 30
    assert _feed(Plateau(window=15, min_gain=0.005, min_steps=30), falling) is None


def test_plateau_waits_for_its_minimum_steps():
    assert _feed(Plateau(window=5, min_steps=40), [1.0] * 39) is None
    assert _feed(Plateau(window=5, min_steps=40), [1.0] * 45) == 40


def test_cutout_ramp_rises_from_its_start_to_the_full_count_by_mid_run():
    from imagination.loop import CutoutRamp

    ramp = CutoutRamp(start=8, until=0.5)
    counts = [ramp.count(s, 100, 32) for s in range(1, 101)]
    assert counts[0] == 8 and counts[50] == 32 and counts[-1] == 32
    assert counts[25] == 20  # half-way up at a quarter of the run
    assert all(a <= b for a, b in zip(counts, counts[1:]))
