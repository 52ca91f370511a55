import math
import warnings

import pytest
import torch
from torch.optim import lr_scheduler

from course_utils import models, schedulers, training

EPOCHS = 4


def new_run(seed=0, lr=0.05, batch_norm=True, dropout=0.25):
    training.set_seed(seed)
    model = models.LeNet(batch_norm=batch_norm, dropout=dropout)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return model, optimizer




def without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records]


@pytest.mark.parametrize("make", [
    lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.7),
], ids=["StepLR", "ExponentialLR"])
def test_recorded_epoch_lrs_equal_torch(make, small_loaders):
    model, optimizer = new_run()
    history = training.fit(model, *small_loaders, optimizer, epochs=EPOCHS,
                           scheduler=make(optimizer), progress=False)
    assert history.lr == schedulers.lr_trace(make, epochs=EPOCHS, lr=0.05)
    assert history.epochs == list(range(1, EPOCHS + 1))


def test_recorded_batch_lrs_equal_torch_onecycle(small_loaders):
    train_loader, val_loader = small_loaders
    steps = EPOCHS * len(train_loader)
    make = lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)  # noqa: E731
    model, optimizer = new_run()
    history = training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS,
                           scheduler=make(optimizer), step_per="batch", progress=False)
    expected = schedulers.lr_trace(make, epochs=EPOCHS, lr=0.05,
                                   steps_per_epoch=len(train_loader), step_per="batch")
    assert history.batch_lrs == expected
    assert history.lr == expected[::len(train_loader)]      # the lr each epoch started with


def test_plateau_steps_on_the_named_metric(small_loaders):
    model, optimizer = new_run(lr=0.1)
    make = lambda opt: lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5,  # noqa: E731
                                                      patience=0)
    history = training.fit(model, *small_loaders, optimizer, epochs=EPOCHS,
                           scheduler=make(optimizer), plateau_metric="val_acc", progress=False)
    # Replaying the recorded accuracies through torch's own scheduler gives the same lrs.
    assert history.lr == schedulers.lr_trace(make, epochs=EPOCHS, lr=0.1, metrics=history.val_acc)


def test_plateau_mode_that_contradicts_the_metric_is_refused_before_training(small_loaders):
    model, optimizer = new_run()
    before = [p.clone() for p in model.parameters()]
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode="min")
    with pytest.raises(ValueError, match="mode='min'.*contradicts.*val_acc.*mode='max'"):
        training.fit(model, *small_loaders, optimizer, epochs=1, scheduler=scheduler,
                     plateau_metric="val_acc", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_other_bad_setups_are_refused(small_loaders):
    model, optimizer = new_run()
    plateau = lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(ValueError, match="once per epoch"):
        training.fit(model, *small_loaders, optimizer, epochs=1, scheduler=plateau,
                     step_per="batch")
    with pytest.raises(ValueError, match="needs a val_loader"):
        training.fit(model, small_loaders[0], None, optimizer, epochs=1, scheduler=plateau)
    with pytest.raises(ValueError, match="plateau_metric must be"):
        training.fit(model, *small_loaders, optimizer, epochs=1, scheduler=plateau,
                     plateau_metric="val_accuracy")
    with pytest.raises(ValueError, match="step_per"):
        training.fit(model, *small_loaders, optimizer, epochs=1, step_per="iteration")
    _, other = new_run()
    with pytest.raises(ValueError, match="different optimizer"):
        training.fit(model, *small_loaders, optimizer, epochs=1,
                     scheduler=lr_scheduler.StepLR(other, 1))


def test_no_step_order_warning(small_loaders):
    model, optimizer = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # torch warns if scheduler.step() came first
        training.fit(model, *small_loaders, optimizer, epochs=2, progress=False,
                     scheduler=lr_scheduler.StepLR(optimizer, 1))


def test_nan_loss_stops_training_and_keeps_history(small_loaders, capsys):
    calls = {"n": 0}
    batches = len(small_loaders[0])

    def loss_fn(logits, y):
        calls["n"] += 1
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss * math.nan if calls["n"] > batches else loss   # NaN from epoch 2 on

    model, optimizer = new_run(lr=0.02)
    history = training.fit(model, small_loaders[0], None, optimizer, epochs=5, loss_fn=loss_fn,
                           progress=False)
    assert len(history) == 1
    assert "epoch 2" in history.stopped and "lr 0.02" in history.stopped
    assert "Training stopped" in capsys.readouterr().out


def test_same_seed_same_history_on_cpu(small_loaders):
    runs = []
    for _ in range(2):
        model, optimizer = new_run(seed=3)
        history = training.fit(model, *small_loaders, optimizer, epochs=2, progress=False,
                               scheduler=lr_scheduler.StepLR(optimizer, 1, gamma=0.5))
        runs.append((without_seconds(history), model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    model, optimizer = new_run(seed=4)
    other = training.fit(model, *small_loaders, optimizer, epochs=2, progress=False)
    assert without_seconds(other) != runs[0][0]


def test_evaluate_uses_eval_mode_and_restores_train_mode(small_loaders):
    model, _ = new_run()
    model.train()
    running_mean = model.features.bn1.running_mean.clone()
    first = training.evaluate(model, small_loaders[1])
    assert model.training
    assert torch.equal(model.features.bn1.running_mean, running_mean)   # stats untouched
    assert training.evaluate(model, small_loaders[1]) == first          # dropout off
    model.eval()
    training.evaluate(model, small_loaders[1])
    assert not model.training


def test_history_round_trip_and_best(small_loaders):
    model, optimizer = new_run()
    history = training.fit(model, *small_loaders, optimizer, epochs=2, progress=False)
    again = training.History.from_dict(history.to_dict())
    assert again.records == history.records and again.batch_lrs == history.batch_lrs
    assert history.best("val_acc")["val_acc"] == max(history.val_acc)
    assert history.best("val_loss")["val_loss"] == min(history.val_loss)
    with pytest.raises(KeyError, match="has no 'accuracy'"):
        history.column("accuracy")


def test_continuing_a_history_numbers_epochs_on(small_loaders):
    model, optimizer = new_run()
    history = training.fit(model, *small_loaders, optimizer, epochs=1, progress=False)
    training.fit(model, *small_loaders, optimizer, epochs=2, history=history, progress=False)
    assert history.epochs == [1, 2, 3]


def test_set_seed_deterministic_switches_cudnn_and_back():
    try:
        training.set_seed(0, deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        first = torch.rand(3)
        training.set_seed(0)
        assert not torch.backends.cudnn.deterministic
        assert torch.equal(torch.rand(3), first)        # the seed, not the flag, fixes the numbers
    finally:
        training.set_seed(0)
