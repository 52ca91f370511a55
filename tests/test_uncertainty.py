"""course_utils.uncertainty: the MC-dropout switch, MC probabilities, entropy and calibration,
on hand-made cases whose answers are worked out by hand in the comments."""

import math

import pytest
import torch
from torch import nn

from course_utils import data, uncertainty


def probabilities_with_confidence(confidence, count, classes=2):
    """`count` rows whose top class (class 0) has probability `confidence`, the rest shared."""
    rest = (1 - confidence) / (classes - 1)
    row = torch.tensor([confidence] + [rest] * (classes - 1), dtype=torch.float64)
    return row.repeat(count, 1)


def labels_with_correct(count, correct):
    """Class 0 (the prediction) for the first `correct` rows, class 1 for the others."""
    return torch.tensor([0] * correct + [1] * (count - correct))


# ------------------------------------------------------------------ expected calibration error

def test_perfectly_calibrated_predictions_have_zero_ece():
    # 10 predictions at confidence 0.8, 8 of them right: accuracy 0.8 = confidence.
    probabilities = probabilities_with_confidence(0.8, 10)
    ece = uncertainty.expected_calibration_error(probabilities, labels_with_correct(10, 8))
    assert ece == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("confidence", (1.0, 0.9, 0.55))
def test_confident_and_always_wrong_gives_the_confidence(confidence):
    # One bin, accuracy 0: |0 - confidence| = confidence.
    probabilities = probabilities_with_confidence(confidence, 7)
    ece = uncertainty.expected_calibration_error(probabilities, labels_with_correct(7, 0))
    assert ece == pytest.approx(confidence, abs=1e-12)


def test_two_bins_worked_out_by_hand():
    # bins=2: (0, 0.5] and (0.5, 1]. Six predictions at confidence 0.4 (3 classes), 3 right:
    # accuracy 0.5, gap 0.1, weight 0.6. Four at confidence 0.9, 3 right: accuracy 0.75,
    # gap 0.15, weight 0.4. ECE = 0.6 * 0.1 + 0.4 * 0.15 = 0.12.
    probabilities = torch.cat([probabilities_with_confidence(0.4, 6, classes=3),
                               probabilities_with_confidence(0.9, 4, classes=3)])
    labels = torch.cat([labels_with_correct(6, 3), labels_with_correct(4, 3)])
    count, accuracy, confidence = uncertainty.calibration_bins(probabilities, labels, bins=2)
    assert count.tolist() == [6, 4]
    assert accuracy.tolist() == pytest.approx([0.5, 0.75])
    assert confidence.tolist() == pytest.approx([0.4, 0.9])
    ece = uncertainty.expected_calibration_error(probabilities, labels, bins=2)
    assert ece == pytest.approx(0.12, abs=1e-12)
    # One bin mixes them: accuracy 6/10 = 0.6, mean confidence (6*0.4 + 4*0.9)/10 = 0.6.
    assert uncertainty.expected_calibration_error(probabilities, labels, bins=1) == \
        pytest.approx(0.0, abs=1e-12)


def test_bins_are_closed_on_the_right_and_empty_bins_are_nan():
    # Confidence 0.5 belongs to (0.25, 0.5], the second of 4 bins; 0.75 to the third.
    probabilities = torch.cat([probabilities_with_confidence(0.5, 2),
                               probabilities_with_confidence(0.75, 2)])
    count, accuracy, confidence = uncertainty.calibration_bins(
        probabilities, labels_with_correct(4, 4), bins=4)
    assert count.tolist() == [0, 2, 2, 0]
    assert math.isnan(accuracy[0]) and math.isnan(confidence[3])
    assert accuracy[1:3].tolist() == [1.0, 1.0]


def test_ece_matches_a_plain_loop_on_random_predictions():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(3 * torch.randn(500, 10, generator=generator), dim=1)
    labels = torch.randint(0, 10, (500,), generator=generator)
    confidence, predicted = probabilities.double().max(dim=1)
    expected = 0.0
    for m in range(15):
        low, high = m / 15, (m + 1) / 15
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            accuracy = (predicted[inside] == labels[inside]).double().mean()
            expected += inside.double().mean() * (accuracy - confidence[inside].mean()).abs()
    assert uncertainty.expected_calibration_error(probabilities, labels) == \
        pytest.approx(float(expected), abs=1e-9)


@pytest.mark.parametrize("shape, labels", [((3, 4, 10), (4,)), ((5, 10), (4,)), ((0, 10), (0,))])
def test_calibration_refuses_wrong_shapes(shape, labels):
    with pytest.raises(ValueError, match="probabilities"):
        uncertainty.expected_calibration_error(torch.rand(shape), torch.zeros(labels).long())


@pytest.mark.parametrize("bins", (0, -3, 2.5))
def test_calibration_refuses_bad_bins(bins):
    with pytest.raises(ValueError, match="bins"):
        uncertainty.expected_calibration_error(torch.rand(5, 3), torch.zeros(5).long(), bins)


# ------------------------------------------------------------------ entropy

def test_entropy_of_one_hot_uniform_and_a_coin():
    probabilities = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25],
                                  [0.5, 0.5, 0.0, 0.0]])
    assert uncertainty.predictive_entropy(probabilities).tolist() == \
        pytest.approx([0.0, math.log(4), math.log(2)])
    assert uncertainty.predictive_entropy(probabilities[None].repeat(3, 1, 1)).shape == (3, 3)


# ------------------------------------------------------------------ the MC-dropout switch

def network(p=0.5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout2d(p),
                         nn.Flatten(), nn.Dropout(p), nn.Linear(4 * 26 * 26, 10))


def flags(model):
    return [module.training for module in model.modules()]


@pytest.mark.parametrize("start", ("train", "eval", "mixed"))
def test_only_dropout_layers_drop_inside_and_every_flag_comes_back(start):
    model = network()
    model.train(start != "eval")
    if start == "mixed":
        model[1].eval()                        # e.g. BatchNorm frozen for fine-tuning
    before = flags(model)
    with uncertainty.mc_dropout(model) as inside:
        assert inside is model
        assert not model.training and not model[0].training and not model[1].training
        assert model[3].training and model[5].training          # Dropout2d and Dropout
    assert flags(model) == before


def test_flags_come_back_after_an_exception():
    model = network().eval()
    before = flags(model)
    with pytest.raises(RuntimeError, match="boom"), uncertainty.mc_dropout(model):
        raise RuntimeError("boom")
    assert flags(model) == before


def test_batchnorm_statistics_stay_put_under_mc_dropout():
    model = network().train()
    model(torch.randn(8, 1, 28, 28))                           # some running statistics
    running_mean = model[1].running_mean.clone()
    tracked = model[1].num_batches_tracked.item()
    uncertainty.mc_probabilities(model, torch.randn(8, 1, 28, 28), samples=5)
    assert torch.equal(model[1].running_mean, running_mean)
    assert model[1].num_batches_tracked.item() == tracked


# ------------------------------------------------------------------ MC probabilities

def test_mc_with_p_zero_is_eval_mode():
    model = network(p=0.0).train()
    model(torch.randn(16, 1, 28, 28) * 2 + 1)                 # running stats away from 0 and 1
    X = torch.randn(6, 1, 28, 28)
    samples = uncertainty.mc_probabilities(model, X, samples=3)
    assert samples.shape == (3, 6, 10) and model.training      # the flag came back
    with torch.no_grad():
        expected = model.eval()(X).softmax(dim=1)
    assert torch.allclose(samples, expected.expand(3, -1, -1), atol=1e-6)
    assert not samples.requires_grad


def test_masks_differ_and_rows_are_distributions():
    samples = uncertainty.mc_probabilities(network().eval(), torch.randn(6, 1, 28, 28), 4)
    assert not torch.allclose(samples[0], samples[1])
    assert torch.allclose(samples.sum(dim=2), torch.ones(4, 6), atol=1e-5)


def test_the_average_over_masks_converges():
    # Two independent averages over T masks differ by O(1/sqrt(T)): 100x the masks, about 10x
    # closer (asserted: at least 3x). With tiny logits softmax is almost linear in them, so the
    # average also approaches eval mode's probabilities (the weight scaling rule is exact for a
    # linear layer after dropout).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(64, 10)).eval()
    with torch.no_grad():
        model[-1].weight.mul_(0.01)
    X = torch.randn(4, 64)
    distance = {}
    for T in (20, 2000):
        torch.manual_seed(1)
        first = uncertainty.mc_probabilities(model, X, T).mean(dim=0)
        second = uncertainty.mc_probabilities(model, X, T).mean(dim=0)
        distance[T] = (first - second).abs().max().item()
    assert distance[2000] < distance[20] / 3
    with torch.no_grad():
        eval_probabilities = model(X).softmax(dim=1)
    assert torch.allclose(first, eval_probabilities, atol=5 * distance[2000] + 1e-4)


def test_a_loader_is_read_whole_in_order():
    generator = torch.Generator().manual_seed(0)
    split = data.Split(torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8, generator=generator),
                       torch.arange(10) % 10, tuple("abcdefghij"), 0.5, 0.25)
    loader = data.TensorLoader(split, 4)                        # batches of 4, 4, 2
    model = network(p=0.0)
    from_loader = uncertainty.mc_probabilities(model, loader, samples=2)
    from_tensor = uncertainty.mc_probabilities(model, torch.cat([X for X, _ in loader]), 2)
    assert from_loader.shape == (2, 10, 10)
    assert torch.allclose(from_loader, from_tensor, atol=1e-6)


@pytest.mark.parametrize("samples", (0, -1, 2.0))
def test_mc_refuses_a_bad_number_of_samples(samples):
    with pytest.raises(ValueError, match="samples"):
        uncertainty.mc_probabilities(network(), torch.randn(2, 1, 28, 28), samples)
