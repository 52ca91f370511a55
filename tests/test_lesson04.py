"""The claims notebook 04 (BatchNorm) shows once, checked here exhaustively against torch.

The notebook states each claim with one illustrative case and points here; these tests hold it to
grids of shapes, momenta and modes: BatchNorm's train-mode output (batch statistics, biased
variance), the running update (momentum is the weight of the new batch; the unbiased variance is
stored), eval mode, `momentum=None`, `track_running_stats=False`, the batch-of-one rule, the
half-life ln 0.5 / ln(1 - momentum), Keras' convention, the convolution bias that BatchNorm
cancels, GroupNorm(1, C) as LayerNorm, and what does and does not freeze BatchNorm when
fine-tuning. Public torch API only.
"""

import copy
import math

import pytest
import torch
from torch import nn

MOMENTA = (0.0, 0.01, 0.1, 0.5, 0.9, 1.0)
SHAPES_2D = ((2, 3, 1, 1), (1, 3, 4, 4), (8, 3, 5, 5), (4, 2, 3, 7))
ATOL_OUTPUT, TOL_STATS = 1e-5, 1e-5


def reduce_dims(X):
    """The dimensions BatchNorm averages over: all but the channel dimension 1."""
    return (0,) + tuple(range(2, X.dim()))


def shape_like(values, X):
    """(C,) -> (1, C, 1, ...), to broadcast over X."""
    return values.view((1, -1) + (1,) * (X.dim() - 2))


def by_hand(X, mean, var, bn):
    out = (X - shape_like(mean, X)) / torch.sqrt(shape_like(var, X) + bn.eps)
    if bn.affine:
        out = out * shape_like(bn.weight, X) + shape_like(bn.bias, X)
    return out


def random_affine(bn, seed):
    if bn.affine:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bn.weight.copy_(torch.rand(bn.num_features, generator=generator) * 2 + 0.1)
            bn.bias.copy_(torch.randn(bn.num_features, generator=generator))


def close(actual, expected, tol=TOL_STATS):
    return torch.allclose(actual, expected, rtol=tol, atol=tol)


# ------------------------------------------------------------------ train mode and the update

@pytest.mark.parametrize("momentum", MOMENTA + (None,))
@pytest.mark.parametrize("shape", SHAPES_2D)
@pytest.mark.parametrize("affine", (True, False))
def test_train_mode_and_running_update_over_several_batches(momentum, shape, affine):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(shape[1], momentum=momentum, affine=affine, eps=1e-3)
    random_affine(bn, 1)
    running_mean, running_var = torch.zeros(shape[1]), torch.ones(shape[1])
    for k in range(1, 5):
        X = torch.randn(*shape) * k + k                     # the statistics change every batch
        y = bn(X)
        dims = reduce_dims(X)
        mean, biased, unbiased = (X.mean(dim=dims), X.var(dim=dims, correction=0),
                                  X.var(dim=dims, correction=1))
        with torch.no_grad():
            assert torch.allclose(y, by_hand(X, mean, biased, bn), atol=ATOL_OUTPUT)
        weight = 1.0 / k if momentum is None else momentum   # the weight of the NEW batch
        running_mean = (1 - weight) * running_mean + weight * mean
        running_var = (1 - weight) * running_var + weight * unbiased
        assert close(bn.running_mean, running_mean)
        assert close(bn.running_var, running_var)
        assert bn.num_batches_tracked.item() == k


@pytest.mark.parametrize("momentum", (0.1, 0.5, 1.0))
def test_the_stored_variance_is_unbiased_and_the_forward_one_biased(momentum):
    torch.manual_seed(1)
    X = torch.randn(3, 4, 2, 2) * 3                         # 12 values per channel: 12/11 apart
    bn = nn.BatchNorm2d(4, momentum=momentum, affine=False)
    y = bn(X)
    unbiased, biased = X.var(dim=(0, 2, 3), correction=1), X.var(dim=(0, 2, 3), correction=0)
    assert close(bn.running_var, (1 - momentum) + momentum * unbiased)
    assert not close(bn.running_var, (1 - momentum) + momentum * biased)
    assert not torch.allclose(y, by_hand(X, X.mean(dim=(0, 2, 3)), unbiased, bn), atol=1e-4)


@pytest.mark.parametrize("dims", ((6, 3), (6, 3, 5)))
@pytest.mark.parametrize("momentum", (0.1, None))
def test_batchnorm1d_follows_the_same_rules(dims, momentum):
    torch.manual_seed(2)
    bn = nn.BatchNorm1d(3, momentum=momentum)
    random_affine(bn, 3)
    X = torch.randn(*dims) * 2 - 1
    y = bn(X)
    d = reduce_dims(X)
    with torch.no_grad():
        assert torch.allclose(y, by_hand(X, X.mean(dim=d), X.var(dim=d, correction=0), bn),
                              atol=ATOL_OUTPUT)
    weight = 1.0 if momentum is None else momentum
    assert close(bn.running_mean, weight * X.mean(dim=d))


# ------------------------------------------------------------------------------ eval mode

@pytest.mark.parametrize("shape", SHAPES_2D)
@pytest.mark.parametrize("momentum", (0.1, None))
def test_eval_mode_uses_the_running_statistics_and_updates_nothing(shape, momentum):
    torch.manual_seed(3)
    bn = nn.BatchNorm2d(shape[1], momentum=momentum)
    random_affine(bn, 4)
    for _ in range(3):
        bn(torch.randn(*shape) * 2 + 1)
    state = copy.deepcopy(bn.state_dict())
    bn.eval()
    X = torch.randn(*shape) + 5
    with torch.no_grad():
        assert torch.allclose(bn(X), by_hand(X, bn.running_mean, bn.running_var, bn),
                              atol=ATOL_OUTPUT)
        for index in range(shape[0]):                       # each sample on its own
            assert torch.allclose(bn(X[index:index + 1]), bn(X)[index:index + 1],
                                  atol=ATOL_OUTPUT)
    assert all(torch.equal(state[key], value) for key, value in bn.state_dict().items())


@pytest.mark.parametrize("shape", SHAPES_2D)
def test_track_running_stats_false_uses_batch_statistics_in_both_modes(shape):
    torch.manual_seed(4)
    bn = nn.BatchNorm2d(shape[1], track_running_stats=False)
    assert bn.running_mean is None and bn.running_var is None
    X = torch.randn(*shape) * 3 + 2
    d = reduce_dims(X)
    expected = by_hand(X, X.mean(dim=d), X.var(dim=d, correction=0), bn)
    with torch.no_grad():
        for mode in (True, False):
            assert torch.allclose(bn.train(mode)(X), expected, atol=ATOL_OUTPUT)


# --------------------------------------------------------------------------- batch of one

@pytest.mark.parametrize("shape", [(1, 3), (2, 3), (1, 3, 1), (1, 3, 2), (1, 3, 1, 1),
                                   (2, 3, 1, 1), (1, 3, 1, 2), (1, 3, 5, 5), (1, 3, 1, 1, 1),
                                   (1, 3, 2, 1, 1)])
def test_train_mode_raises_exactly_when_a_channel_has_one_value(shape):
    layer = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[
        len(shape)](3)
    values_per_channel = math.prod(shape) // shape[1]
    X = torch.randn(*shape)
    if values_per_channel == 1:
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            layer.train()(X)
    else:
        layer.train()(X)
    layer.eval()(X)                                        # eval mode never raises


# ------------------------------------------------------------- momentum: half-life, Keras

@pytest.mark.parametrize("momentum", (0.01, 0.05, 0.1, 0.2, 0.5, 0.9))
def test_a_batch_weighs_half_after_ln_half_over_ln_one_minus_momentum(momentum):
    """One batch with mean 1 then batches with mean 0: its weight after k more batches is
    momentum * (1 - momentum)^k, which crosses momentum / 2 at k = ln 0.5 / ln(1 - momentum)."""
    half_life = math.log(0.5) / math.log(1 - momentum)
    bn = nn.BatchNorm1d(1, momentum=momentum).double()
    bn(torch.tensor([[0.0], [2.0]], dtype=torch.float64))
    weights = [bn.running_mean.item()]
    for _ in range(math.ceil(half_life) + 1):
        bn(torch.tensor([[-1.0], [1.0]], dtype=torch.float64))
        weights.append(bn.running_mean.item())
    assert math.isclose(weights[0], momentum, rel_tol=1e-12)
    for k, weight in enumerate(weights):
        assert math.isclose(weight, momentum * (1 - momentum) ** k, rel_tol=1e-9)
        assert (weight > momentum / 2) == (k < half_life)
    assert math.isclose(momentum * (1 - momentum) ** half_life, momentum / 2, rel_tol=1e-12)


@pytest.mark.parametrize("momentum", MOMENTA)
def test_keras_momentum_is_one_minus_pytorch_momentum(momentum):
    torch.manual_seed(5)
    bn = nn.BatchNorm2d(2, momentum=momentum)
    moving = torch.zeros(2)
    for _ in range(4):
        X = torch.randn(4, 2, 3, 3) + 1
        bn(X)
        keras_momentum = 1 - momentum                      # Keras: the weight of the OLD value
        moving = moving * keras_momentum + X.mean(dim=(0, 2, 3)) * (1 - keras_momentum)
    assert close(bn.running_mean, moving)


# ------------------------------------------------------------ the bias before BatchNorm

@pytest.mark.parametrize("seed", range(5))
def test_a_convolution_bias_before_batchnorm_cancels_in_train_mode(seed):
    torch.manual_seed(seed)
    X = torch.randn(16, 3, 12, 12, dtype=torch.float64)
    with_bias = nn.Conv2d(3, 8, 3).double()
    without = nn.Conv2d(3, 8, 3, bias=False).double()
    with torch.no_grad():
        without.weight.copy_(with_bias.weight)
        with_bias.bias.uniform_(-5, 5)
    bn_with, bn_without = nn.BatchNorm2d(8).double(), nn.BatchNorm2d(8).double()
    out = bn_with(with_bias(X))
    assert torch.allclose(out, bn_without(without(X)), rtol=0, atol=1e-10)
    (out * torch.randn_like(out)).sum().backward()
    assert with_bias.bias.grad.abs().max() < 1e-8 * with_bias.weight.grad.abs().max()
    # Eval mode: the running means differ by momentum * bias after one batch; once the running
    # mean has caught up (many batches of the same input) the outputs agree again.
    assert torch.allclose(bn_with.running_mean - bn_without.running_mean,
                          bn_with.momentum * with_bias.bias.detach(), rtol=0, atol=1e-12)
    with torch.no_grad():
        conv_with, conv_without = with_bias(X), without(X)
        for _ in range(300):
            bn_with(conv_with)
            bn_without(conv_without)
        bn_with.eval()
        bn_without.eval()
        assert torch.allclose(bn_with(conv_with), bn_without(conv_without), rtol=0, atol=1e-8)


# ----------------------------------------------------------- GroupNorm and LayerNorm

@pytest.mark.parametrize("shape", ((2, 8, 5, 5), (1, 16, 3, 3), (4, 4, 6, 2)))
def test_groupnorm_with_one_group_normalizes_like_layernorm_and_has_no_running_state(shape):
    torch.manual_seed(6)
    X = torch.randn(*shape) * 2 + 1
    group = nn.GroupNorm(1, shape[1], affine=False)
    layer = nn.LayerNorm(shape[1:], elementwise_affine=False)
    assert torch.allclose(group(X), layer(X), atol=1e-5)
    groups4 = nn.GroupNorm(4, shape[1])
    assert not list(groups4.buffers())
    with torch.no_grad():
        assert torch.equal(groups4.train()(X), groups4.eval()(X))
        # Each image on its own: a batch of one gives the same output as inside the batch.
        assert torch.allclose(groups4(X[:1]), groups4(X)[:1], atol=1e-6)


# --------------------------------------------------------------------- fine-tuning

def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


def freeze_batchnorm(model):
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def buffers_of(model):
    return {name: value.clone() for name, value in model.named_buffers()}


def fine_tune_steps(model, freeze, steps=3):
    optimizer = torch.optim.SGD(model[-1].parameters(), lr=0.1)
    for _ in range(steps):
        model.train()                                       # what every training loop does
        if freeze:
            freeze_batchnorm(model)
        loss = model(torch.randn(8, 1, 8, 8) * 2 + 3).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_requires_grad_false_does_not_freeze_the_running_statistics():
    torch.manual_seed(7)
    model = small_net()
    model.requires_grad_(False)
    model[-1].requires_grad_(True)
    before = buffers_of(model)
    fine_tune_steps(model, freeze=False)
    assert not torch.equal(model[1].running_mean, before["1.running_mean"])
    assert model[1].num_batches_tracked.item() == 3
    assert all(p.grad is None for p in model[1].parameters())   # no gradient, still moved


def test_train_undoes_a_batchnorm_layers_eval():
    model = small_net()
    model[1].eval()
    assert not model[1].training
    model.train()
    assert model[1].training


def test_freeze_batchnorm_after_every_train_keeps_the_statistics():
    torch.manual_seed(8)
    model = small_net()
    model.requires_grad_(False)
    model[-1].requires_grad_(True)
    before = buffers_of(model)
    weight = model[-1].weight.clone()
    fine_tune_steps(model, freeze=True)
    after = buffers_of(model)
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not torch.equal(model[-1].weight, weight)       # the head did learn
