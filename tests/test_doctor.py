"""course_utils.doctor: each silent mistake it must find, healthy set-ups it must leave alone,
and the promise that examining a model leaves it exactly as it was."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from course_utils import doctor, models

STEPS_PER_EPOCH, EPOCHS = 10, 5


def batch(n=8):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def lenet(**kwargs):
    torch.manual_seed(0)
    return models.LeNet(**{"batch_norm": True, "dropout": 0.5, **kwargs})


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def checks(findings):
    return [finding.check for finding in findings]


class WithHead(nn.Module):
    """LeNet's body, then a head of the given kind, registered as the layer 'head'."""

    def __init__(self, head):
        super().__init__()
        self.body, self.head = lenet(dropout=0.0), head

    def forward(self, X):
        return self.head(self.body(X))


class FunctionalDropout(nn.Module):
    def forward(self, X):
        return F.dropout(X, 0.5)                     # training=True by default: on in eval too


class DropoutBuiltInForward(nn.Module):
    def forward(self, X):
        return nn.Dropout(0.5)(X)                    # a new module, in train mode, every call


class CountsCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, X):
        self.calls += 1                              # also in eval mode
        return X


class ReplacesBuffer(CountsCalls):
    def forward(self, X):
        self.calls = self.calls + 1                  # a new tensor object in place of the buffer
        return X


class UndoesEval(nn.Module):
    """A model whose forward switches its BatchNorm back to train mode (eval() undone)."""

    def __init__(self):
        super().__init__()
        self.net = lenet(dropout=0.0)

    def forward(self, X):
        self.net.features.bn2.train()
        return self.net(X)


class Raises(nn.Module):
    """Changes a buffer and a flag, then fails: examine must still put everything back."""

    def __init__(self):
        super().__init__()
        self.net, self.counter = lenet(), CountsCalls()

    def forward(self, X):
        self.net.train()
        self.counter(self.net(X))
        raise RuntimeError("the model failed")


# --- what must be found -----------------------------------------------------------------------

@pytest.mark.parametrize("head", [FunctionalDropout(), DropoutBuiltInForward()],
                         ids=["F.dropout", "Dropout built in forward"])
def test_dropout_alive_in_eval_is_found_and_its_layer_named(head):
    findings = doctor.examine(WithHead(head), batch())
    assert checks(findings) == ["random evaluation"]
    assert f"'head' ({type(head).__name__})" in findings[0].message


def test_randomness_in_the_models_own_forward_names_the_model():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = lenet(dropout=0.0)

        def forward(self, X):
            return F.dropout(self.net(X), 0.3)

    findings = doctor.examine(Model(), batch())
    assert checks(findings) == ["random evaluation"]
    assert "the model's forward (Model)" in findings[0].message


@pytest.mark.parametrize("head", [CountsCalls(), ReplacesBuffer()], ids=["in place", "replaced"])
def test_evaluation_that_changes_a_buffer_is_found_and_the_buffer_named(head):
    findings = doctor.examine(WithHead(head), batch())
    assert checks(findings) == ["evaluation changes the model"]
    assert "'head.calls'" in findings[0].message


def test_evaluation_that_moves_batchnorm_statistics_is_found():
    findings = doctor.examine(UndoesEval(), batch())
    assert "evaluation changes the model" in checks(findings)
    message = findings[checks(findings).index("evaluation changes the model")].message
    assert "'net.features.bn2.running_mean'" in message and "bn1" not in message


def test_frozen_batchnorm_in_train_mode_is_found_and_named():
    model = lenet()
    model.features.requires_grad_(False)             # "frozen", but still in train mode
    model.train()
    findings = doctor.examine(model, batch(), optimizer=sgd(model.classifier))
    assert checks(findings) == ["frozen batchnorm in train mode"]
    for name in ("'features.bn1'", "'features.bn2'", "'features.bn3'"):
        assert name in findings[0].message


def test_one_frozen_batchnorm_layer_is_named_alone():
    model = lenet()
    model.features.bn2.requires_grad_(False)
    findings = doctor.examine(model, batch())
    assert checks(findings) == ["frozen batchnorm in train mode"]
    assert "'features.bn2'" in findings[0].message and "bn1" not in findings[0].message


@pytest.mark.parametrize("make", [
    lambda opt: lr_scheduler.StepLR(opt, step_size=2),
    lambda opt: lr_scheduler.ReduceLROnPlateau(opt),
    lambda opt: lr_scheduler.SequentialLR(opt, [lr_scheduler.LinearLR(opt, 0.1, total_iters=2),
                                                lr_scheduler.ExponentialLR(opt, 0.9)], [2]),
], ids=["StepLR", "ReduceLROnPlateau", "SequentialLR"])
def test_scheduler_on_another_optimizer_is_found_and_named(make):
    model = lenet()
    optimizer, other = sgd(model), sgd(model)
    scheduler = make(other)
    findings = doctor.examine(model, batch(), optimizer=optimizer, scheduler=scheduler)
    assert checks(findings)[0] == "scheduler on another optimizer"
    assert type(scheduler).__name__ in findings[0].message


@pytest.mark.parametrize("make, names", [
    # sized in epochs, stepped per batch: the course's classic
    (lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=EPOCHS), "total_steps=5"),
    (lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=EPOCHS - 1,
                                         steps_per_epoch=STEPS_PER_EPOCH), "total_steps=40"),
    (lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS - 2), "T_max=3"),
    (lambda opt: lr_scheduler.PolynomialLR(opt, total_iters=EPOCHS - 1), "total_iters=4"),
], ids=["OneCycleLR in epochs", "OneCycleLR one epoch short", "CosineAnnealingLR",
        "PolynomialLR"])
def test_a_schedule_too_short_for_the_run_is_found(make, names):
    model = lenet()
    optimizer = sgd(model)
    scheduler = make(optimizer)
    findings = doctor.examine(model, batch(), optimizer=optimizer, scheduler=scheduler,
                              steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
    assert checks(findings) == ["schedule too short"]
    assert type(scheduler).__name__ in findings[0].message and names in findings[0].message


# --- what must not be found -------------------------------------------------------------------

SERIES = {
    "LambdaLR": lambda opt: lr_scheduler.LambdaLR(opt, lambda epoch: 0.9 ** epoch),
    "StepLR": lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    "MultiStepLR": lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[2, 4]),
    "ExponentialLR": lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9),
    "CosineAnnealingLR": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS),
    "CosineAnnealingLR per batch": lambda opt: lr_scheduler.CosineAnnealingLR(
        opt, T_max=STEPS_PER_EPOCH * EPOCHS),
    "OneCycleLR": lambda opt: lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH),
    "ReduceLROnPlateau": lambda opt: lr_scheduler.ReduceLROnPlateau(opt, patience=2),
    "LinearLR": lambda opt: lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2),
    "SequentialLR": lambda opt: lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2),
        lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS - 2)], milestones=[2]),
    "ChainedScheduler": lambda opt: lr_scheduler.ChainedScheduler([
        lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2),
        lr_scheduler.ExponentialLR(opt, gamma=0.9)]),
    "CosineAnnealingWarmRestarts": lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, 2),
    "CyclicLR": lambda opt: lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=5),
    "PolynomialLR": lambda opt: lr_scheduler.PolynomialLR(opt, total_iters=EPOCHS),
}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", SERIES)
def test_healthy_lenet_with_every_scheduler_of_the_series_is_left_alone(name, mode):
    model = lenet().train(mode == "train")
    optimizer = sgd(model)
    scheduler = SERIES[name](optimizer)
    assert doctor.examine(model, batch(), optimizer=optimizer, scheduler=scheduler,
                          steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS) == []


@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.0), (False, 0.5),
                                                 (True, 0.5)])
def test_healthy_lenets_alone_are_left_alone(batch_norm, dropout):
    assert doctor.examine(lenet(batch_norm=batch_norm, dropout=dropout), batch()) == []


def test_frozen_backbone_with_batchnorm_in_eval_is_left_alone():
    model = lenet()
    model.features.requires_grad_(False)
    model.train()
    for module in model.features.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    optimizer = sgd(model.classifier)
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    assert doctor.examine(model, batch(), optimizer=optimizer, scheduler=scheduler,
                          steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS) == []


def test_a_batch_of_one_through_batchnorm_in_train_mode_is_fine():
    assert doctor.examine(lenet().train(), batch(1)) == []   # examined in eval mode


# --- examine leaves the model as it found it --------------------------------------------------

def state(model):
    return ({name: tensor.clone() for name, tensor in model.state_dict().items()},
            {name: module.training for name, module in model.named_modules()},
            {name: id(tensor) for name, tensor in model.state_dict(keep_vars=True).items()})


def assert_unchanged(model, before):
    weights, flags, ids = state(model)
    assert flags == before[1]
    assert ids == before[2], "a weight or buffer was replaced by another tensor"
    assert weights.keys() == before[0].keys()
    for name in weights:
        assert torch.equal(weights[name], before[0][name]), name


def mixed_flags(model):
    model.train()
    model.features.bn2.eval()                        # one layer in eval, the others in train
    return model


@pytest.mark.parametrize("make", [
    lambda: mixed_flags(lenet()),
    lambda: lenet().eval(),
    lambda: WithHead(CountsCalls()),                 # found: evaluation changes a buffer
    lambda: WithHead(ReplacesBuffer()),              # found: ... even replaces it
    lambda: WithHead(FunctionalDropout()),           # found: random evaluation
    UndoesEval,                                      # found: BN statistics move in eval
], ids=["healthy, mixed flags", "healthy, eval", "counts calls", "replaces a buffer", "F.dropout",
        "undoes eval"])
def test_examine_leaves_weights_buffers_flags_and_rng_unchanged(make):
    model = make()
    model(batch())                                   # a history: running stats not at init
    before = state(model)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    doctor.examine(model, batch())
    assert torch.equal(torch.rand(3), expected), "examine changed the random number generator"
    assert_unchanged(model, before)


def test_examine_leaves_the_model_unchanged_when_the_model_raises():
    model = Raises().eval()
    before = state(model)
    rng = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="the model failed"):
        doctor.examine(model, batch())
    assert torch.equal(torch.get_rng_state(), rng)
    assert_unchanged(model, before)


def test_examine_leaves_the_optimizer_and_scheduler_unchanged():
    model = lenet()
    optimizer = sgd(model)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=EPOCHS)
    before = (scheduler.state_dict()["last_epoch"], optimizer.param_groups[0]["lr"])
    doctor.examine(model, batch(), optimizer=optimizer, scheduler=scheduler,
                   steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS)
    assert (scheduler.state_dict()["last_epoch"], optimizer.param_groups[0]["lr"]) == before
    assert all(p.grad is None for p in model.parameters())


# --- bad input gets a clear error -------------------------------------------------------------

def test_a_batch_that_is_not_a_tensor_is_refused_with_the_fix():
    X = batch()
    with pytest.raises(TypeError, match=r"got tuple.*X, y = next\(iter\(train_loader\)\)"):
        doctor.examine(lenet(), (X, torch.zeros(len(X), dtype=torch.long)))


def test_a_scheduler_without_its_optimizer_is_refused():
    model = lenet()
    scheduler = lr_scheduler.StepLR(sgd(model), step_size=2)
    with pytest.raises(TypeError, match="pass optimizer="):
        doctor.examine(model, batch(), scheduler=scheduler)


def test_a_scheduler_that_is_not_one_is_refused():
    model = lenet()
    with pytest.raises(TypeError, match="lr_scheduler object, got str"):
        doctor.examine(model, batch(), optimizer=sgd(model), scheduler="OneCycleLR")


@pytest.mark.parametrize("sizes", [{"steps_per_epoch": 10}, {"epochs": 5},
                                   {"steps_per_epoch": 0, "epochs": 5}])
def test_steps_per_epoch_and_epochs_come_together_and_positive(sizes):
    with pytest.raises(ValueError, match="steps_per_epoch and epochs together"):
        doctor.examine(lenet(), batch(), **sizes)


def test_a_model_that_is_not_a_module_is_refused():
    with pytest.raises(TypeError, match="nn.Module"):
        doctor.examine(lambda X: X, batch())


def test_a_finding_is_frozen_and_prints_its_check():
    finding = doctor.Finding("random evaluation", "dropout is on")
    assert str(finding) == "[random evaluation] dropout is on"
    with pytest.raises(AttributeError):
        finding.check = "something else"
