"""The claims notebook 05 (Dropout) shows once, checked here over grids against torch.

Inverted dropout (the survivors scaled by 1/(1 - p), the expectation kept, the second moment
grown by 1/(1 - p), the identity in eval mode), `Dropout2d`'s channel masks, the `F.dropout`
default, which classes are dropout layers (`_DropoutNd`), `eval()` and `no_grad()` as independent
switches, eval mode as the exact geometric mean of all masks before one linear layer, and the
variance-shift numbers of both orders. Statistical checks allow 4 standard errors and use fixed
seeds. Public torch API, plus `torch.nn.modules.dropout._DropoutNd` (the base class itself).
"""

import inspect
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from course_utils import uncertainty

PS = (0.1, 0.25, 0.5, 0.8)


# ------------------------------------------------------------------ inverted dropout

@pytest.mark.parametrize("p", PS)
def test_constant_input_gives_zero_or_one_over_one_minus_p(p):
    torch.manual_seed(0)
    values = nn.Dropout(p)(torch.ones(10_000)).unique().tolist()
    assert sorted(values) == pytest.approx([0.0, 1 / (1 - p)])


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("inputs", ("uniform", "relu"))
def test_inverted_dropout_statistics(p, inputs):
    torch.manual_seed(1)
    n = 200_000
    X = torch.rand(n) + 0.5 if inputs == "uniform" else torch.relu(torch.randn(n) + 0.5) + 1e-3
    y = nn.Dropout(p)(X)
    kept = y != 0
    assert torch.allclose(y[kept], X[kept] / (1 - p), rtol=1e-6, atol=0)
    dropped = 1 - kept.double().mean().item()
    assert abs(dropped - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - X.mean()) < 4 * y.std() / math.sqrt(n)                 # E[y] = E[x]
    second = (X ** 2).mean() / (1 - p)                                             # E[y²]
    assert abs((y ** 2).mean() - second) < 4 * (y ** 2).std() / math.sqrt(n)


@pytest.mark.parametrize("layer", (nn.Dropout(0.5), nn.Dropout2d(0.5), nn.Dropout1d(0.5),
                                   nn.Dropout3d(0.5)))
def test_every_dropout_layer_is_the_identity_in_eval_mode(layer):
    X = torch.randn(4, 3, 5, 5, 2) if isinstance(layer, nn.Dropout3d) else \
        torch.randn(4, 3, 5) if isinstance(layer, nn.Dropout1d) else torch.randn(4, 3, 5, 5)
    assert torch.equal(layer.eval()(X), X)


def test_f_dropout_drops_by_default_and_obeys_training_false():
    X = torch.ones(1000)
    assert inspect.signature(F.dropout).parameters["training"].default is True
    torch.manual_seed(0)
    assert (F.dropout(X, 0.5) == 0).any()
    assert torch.equal(F.dropout(X, 0.5, training=False), X)


# ------------------------------------------------------------------ Dropout2d

@pytest.mark.parametrize("shape", ((64, 16, 8, 8), (8, 32, 3, 5), (200, 4, 1, 7)))
@pytest.mark.parametrize("p", PS)
def test_dropout2d_drops_whole_channels(shape, p):
    torch.manual_seed(2)
    y = nn.Dropout2d(p)(torch.ones(shape)).flatten(2)                       # (N, C, H·W)
    zero, scaled = (y == 0).all(dim=2), torch.isclose(y, torch.tensor(1 / (1 - p))).all(dim=2)
    assert (zero | scaled).all()                                            # no mixed map
    maps = shape[0] * shape[1]
    assert abs(zero.double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / maps)


def test_dropout_on_maps_drops_single_values():
    torch.manual_seed(3)
    y = nn.Dropout(0.5)(torch.ones(16, 8, 6, 6)).flatten(2)
    mixed = ~((y == 0).all(dim=2) | (y == 2.0).all(dim=2))
    assert mixed.all()


def test_which_classes_are_dropout_layers():
    assert not issubclass(nn.Dropout2d, nn.Dropout)       # the trap of an isinstance check
    for layer in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                  nn.FeatureAlphaDropout):
        assert issubclass(layer, _DropoutNd), layer


# ------------------------------------------------------------------ eval() and no_grad()

@pytest.mark.parametrize("train_mode", (True, False))
@pytest.mark.parametrize("no_grad", (True, False))
def test_eval_and_no_grad_are_independent(train_mode, no_grad):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5)).train(train_mode)
    X = torch.randn(16, 4)
    tracked = model[1].num_batches_tracked.item()
    with torch.set_grad_enabled(not no_grad):
        first, second = model(X), model(X)
    assert (model[1].num_batches_tracked.item() > tracked) == train_mode   # BN statistics
    assert (not torch.equal(first, second)) == train_mode                   # Dropout
    assert first.requires_grad == (not no_grad)                            # the graph


# ------------------------------------------------------------------ the ensemble

@pytest.mark.parametrize("p", (0.25, 0.5))
def test_eval_mode_is_the_geometric_mean_of_all_masks_before_a_linear_layer(p):
    # Every one of the 2^6 masks, weighted by its probability: the weighted mean of the logits
    # is eval mode's, so the normalized geometric mean of the members' softmax is eval mode's.
    torch.manual_seed(5)
    units, linear = 6, nn.Linear(6, 4).double()
    X = torch.rand(3, units, dtype=torch.float64) * 2
    mean_logits = torch.zeros(3, 4, dtype=torch.float64)
    mean_log_probabilities = torch.zeros(3, 4, dtype=torch.float64)
    for mask in itertools.product((0.0, 1.0), repeat=units):
        mask = torch.tensor(mask, dtype=torch.float64)
        weight = (1 - p) ** mask.sum().item() * p ** (units - mask.sum().item())
        logits = linear(X * mask / (1 - p))
        mean_logits += weight * logits
        mean_log_probabilities += weight * logits.log_softmax(dim=1)
    eval_logits = linear(X)
    assert torch.allclose(mean_logits, eval_logits, atol=1e-12)
    assert torch.allclose(mean_log_probabilities.softmax(dim=1), eval_logits.softmax(dim=1),
                          atol=1e-12)


# ------------------------------------------------------------------ the variance shift

def block_stds(dropout_first, p, seed=0):
    """As in the notebook: (BN running_var, block output std in train mode, in eval mode)."""
    dropout, bn = nn.Dropout(p), nn.BatchNorm1d(64, affine=False, momentum=None)
    block = nn.Sequential(dropout, bn) if dropout_first else nn.Sequential(bn, dropout)
    torch.manual_seed(seed)
    with torch.no_grad():
        for _ in range(200):
            train_output = block.train()(torch.randn(256, 64))
        eval_output = block.eval()(torch.randn(4096, 64))
    return bn.running_var.mean().item(), train_output.std().item(), eval_output.std().item()


@pytest.mark.parametrize("p", (0.2, 0.5, 0.7))
def test_dropout_before_batchnorm_shifts_its_variance(p):
    running_var, train_std, eval_std = block_stds(True, p)
    assert running_var == pytest.approx(1 / (1 - p), rel=0.03)
    assert train_std == pytest.approx(1.0, abs=0.03)
    assert eval_std == pytest.approx(math.sqrt(1 - p), rel=0.03)


@pytest.mark.parametrize("p", (0.2, 0.5, 0.7))
def test_batchnorm_before_dropout_spares_the_batchnorm_not_the_output(p):
    running_var, train_std, eval_std = block_stds(False, p)
    assert running_var == pytest.approx(1.0, abs=0.03)
    assert train_std == pytest.approx(math.sqrt(1 / (1 - p)), rel=0.03)   # std ≈ 1.41 at p = 0.5
    assert eval_std == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("p", (0.25, 0.5))
@pytest.mark.parametrize("layer", (nn.Dropout, nn.Dropout2d))
def test_the_variance_ratio_a_batchnorm_sees_is_one_over_one_minus_p(layer, p):
    # Zero-mean input, BatchNorm in eval mode; only the dropout layer switched on.
    torch.manual_seed(6)
    model = nn.Sequential(layer(p), nn.BatchNorm2d(8)).eval()
    X = torch.randn(512, 8, 6, 6)
    inputs = []
    model[1].register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    with torch.no_grad():
        model(X)
        with uncertainty.mc_dropout(model):
            model(X)
    ratio = (inputs[1].var(dim=(0, 2, 3)) / inputs[0].var(dim=(0, 2, 3))).mean().item()
    assert ratio == pytest.approx(1 / (1 - p), rel=0.03)
