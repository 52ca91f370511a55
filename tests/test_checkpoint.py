import pickle

import pytest
import torch
from torch.optim import lr_scheduler

from course_utils import checkpoint, data, models, training


def new_run(seed=0):
    training.set_seed(seed)
    model = models.LeNet(batch_norm=True, dropout=0.25)    # dropout draws random numbers
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=[3], gamma=0.1)
    return model, optimizer, scheduler


def records(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records]


def resumed(small_loaders, path, *, with_scheduler):
    model, optimizer, scheduler = new_run()
    history = training.fit(model, *small_loaders, optimizer, epochs=2, scheduler=scheduler,
                           progress=False)
    checkpoint.save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler,
                               history=history)
    torch.manual_seed(12345)                # whatever happens in between must not matter
    model, optimizer, scheduler = new_run(seed=99)
    state = checkpoint.load_checkpoint(path, model=model, optimizer=optimizer,
                                       scheduler=scheduler if with_scheduler else None)
    assert state["epoch"] == 2
    history = training.fit(model, *small_loaders, optimizer, epochs=2, scheduler=scheduler,
                           history=state["history"], progress=False)
    return model, history


def test_resume_gives_the_same_run_bitwise(small_loaders, tmp_path):
    model, optimizer, scheduler = new_run()
    straight = training.fit(model, *small_loaders, optimizer, epochs=4, scheduler=scheduler,
                            progress=False)
    resumed_model, resumed_history = resumed(small_loaders, tmp_path / "run.pt",
                                             with_scheduler=True)
    assert records(resumed_history) == records(straight)
    for key, value in model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[key]), key


# Every scheduler the series teaches, with the cadence it is stepped at: 4 epochs of 4 batches.
RESUMABLE = {
    "LambdaLR": (lambda opt: lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch), "epoch"),
    "StepLR": (lambda opt: lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), "epoch"),
    "MultiStepLR": (lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[1, 3, 3]), "epoch"),
    "ExponentialLR": (lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.7), "epoch"),
    "ExponentialLR per batch": (lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.97), "batch"),
    "CosineAnnealingLR": (lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=4), "epoch"),
    "OneCycleLR": (lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=16), "batch"),
    "ReduceLROnPlateau": (lambda opt: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5,
                                                                     patience=0), "epoch"),
    "LinearLR then cosine": (lambda opt: lr_scheduler.SequentialLR(
        opt, [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2),
              lr_scheduler.CosineAnnealingLR(opt, T_max=2)], milestones=[2]), "epoch"),
    "LinearLR then cosine per batch": (lambda opt: lr_scheduler.SequentialLR(
        opt, [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=4),
              lr_scheduler.CosineAnnealingLR(opt, T_max=12)], milestones=[4]), "batch"),
    "LinearLR then MultiStepLR": (lambda opt: lr_scheduler.SequentialLR(
        opt, [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2),
              lr_scheduler.MultiStepLR(opt, milestones=[1])], milestones=[2]), "epoch"),
    "CosineAnnealingWarmRestarts": (lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=5), "batch"),
    "CyclicLR": (lambda opt: lr_scheduler.CyclicLR(opt, base_lr=0.005, max_lr=0.1,
                                                   step_size_up=3), "batch"),
    # notebook 06: warmup chained with a cosine, restarts that lengthen, a halving cycle, SWA
    "LinearLR times cosine, chained, per batch": (lambda opt: lr_scheduler.ChainedScheduler(
        [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=4),
         lr_scheduler.CosineAnnealingLR(opt, T_max=16)]), "batch"),
    "CosineAnnealingWarmRestarts T_mult=2": (lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=3, T_mult=2), "batch"),
    "CyclicLR triangular2": (lambda opt: lr_scheduler.CyclicLR(
        opt, base_lr=0.005, max_lr=0.1, step_size_up=2, mode="triangular2"), "batch"),
    "SWALR": (lambda opt: torch.optim.swa_utils.SWALR(opt, swa_lr=0.01, anneal_epochs=3),
              "epoch"),
}


@pytest.fixture(scope="module")
def tiny_loaders(mini):
    """256 training images in 4 shuffled batches, 128 validation images: enough to resume."""
    train, test = mini
    return (data.TensorLoader(data.stratified_subset(train, 256, seed=0), 64, shuffle=True),
            data.TensorLoader(data.stratified_subset(test, 128, seed=0), 128))


@pytest.mark.parametrize("name", RESUMABLE)
def test_every_scheduler_resumes_bitwise(name, tiny_loaders, tmp_path):
    scheduler_fn, step_per = RESUMABLE[name]

    def start(seed):
        training.set_seed(seed)
        model = models.LeNet(batch_norm=True, dropout=0.25)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        return model, optimizer, scheduler_fn(optimizer)

    def train(model, optimizer, scheduler, epochs, history=None):
        return training.fit(model, *tiny_loaders, optimizer, epochs=epochs, scheduler=scheduler,
                            step_per=step_per, history=history, progress=False)

    model, optimizer, scheduler = start(0)
    straight = train(model, optimizer, scheduler, 4)
    first = start(0)
    halfway = train(*first, 2)
    checkpoint.save_checkpoint(tmp_path / "run.pt", model=first[0], optimizer=first[1],
                               scheduler=first[2], history=halfway)
    torch.manual_seed(12345)                # whatever happens in between must not matter
    again = start(99)
    state = checkpoint.load_checkpoint(tmp_path / "run.pt", model=again[0], optimizer=again[1],
                                       scheduler=again[2])
    resumed = train(*again, 2, history=state["history"])
    assert records(resumed) == records(straight)
    assert resumed.batch_lrs == straight.batch_lrs
    assert len(set(straight.batch_lrs if step_per == "batch" else straight.lr)) > 1, \
        "the schedule must change the lr, or the check proves nothing"
    for key, value in model.state_dict().items():
        assert torch.equal(value, again[0].state_dict()[key]), key


def test_multistep_milestones_load_as_a_counter(tmp_path):
    # torch < 2.4 loads no collections.Counter with weights_only=True, so the file holds a plain
    # dict; loading turns it back (MultiStepLR's closed form calls milestones.elements()).
    model, optimizer, scheduler = new_run()
    checkpoint.save_checkpoint(tmp_path / "m.pt", model=model, optimizer=optimizer,
                               scheduler=scheduler)
    _, optimizer, fresh = new_run()
    fresh.milestones = None
    checkpoint.load_checkpoint(tmp_path / "m.pt", model=model, optimizer=optimizer,
                               scheduler=fresh)
    assert fresh.milestones == scheduler.milestones and list(fresh.milestones.elements()) == [3]


def test_resume_without_scheduler_state_differs(small_loaders, tmp_path):
    model, optimizer, scheduler = new_run()
    straight = training.fit(model, *small_loaders, optimizer, epochs=4, scheduler=scheduler,
                            progress=False)
    _, history = resumed(small_loaders, tmp_path / "run.pt", with_scheduler=False)
    # The milestone at epoch 3 is counted from the resume, so epoch 4 keeps the old lr.
    assert straight.lr == [0.05, 0.05, 0.05, pytest.approx(0.005)]
    assert history.lr == [0.05, 0.05, 0.05, 0.05]


def test_plateau_counters_survive_only_with_scheduler_state(tmp_path):
    model, optimizer, _ = new_run()
    plateau = lr_scheduler.ReduceLROnPlateau(optimizer, patience=3)
    for loss in (1.0, 0.8, 0.9, 0.95):
        plateau.step(loss)
    checkpoint.save_checkpoint(tmp_path / "p.pt", model=model, optimizer=optimizer,
                               scheduler=plateau)
    fresh = lr_scheduler.ReduceLROnPlateau(optimizer, patience=3)
    checkpoint.load_checkpoint(tmp_path / "p.pt", model=model, optimizer=optimizer,
                               scheduler=fresh)
    assert (fresh.best, fresh.num_bad_epochs) == (0.8, 2)
    lost = lr_scheduler.ReduceLROnPlateau(optimizer, patience=3)
    checkpoint.load_checkpoint(tmp_path / "p.pt", model=model, optimizer=optimizer)
    assert (lost.best, lost.num_bad_epochs) == (float("inf"), 0)


def test_save_is_atomic(tmp_path, monkeypatch):
    model, optimizer, _ = new_run()
    path = checkpoint.save_checkpoint(tmp_path / "ck.pt", model=model, optimizer=optimizer)
    good = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint(path, model=model, optimizer=optimizer)
    assert path.read_bytes() == good                    # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]    # and no temporary file is left


class NotWeights:
    def __reduce__(self):
        return (print, ("this code would run on load",))


def test_load_refuses_files_that_would_run_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": NotWeights()}, f)
    model, _, _ = new_run()
    with pytest.raises(RuntimeError, match="not a readable checkpoint"):
        checkpoint.load_checkpoint(path, model=model)


def test_missing_checkpoint_and_missing_parts(tmp_path):
    model, optimizer, scheduler = new_run()
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        checkpoint.load_checkpoint(tmp_path / "none.pt", model=model)
    checkpoint.save_checkpoint(tmp_path / "w.pt", model=model)
    with pytest.raises(ValueError, match="no optimizer state"):
        checkpoint.load_checkpoint(tmp_path / "w.pt", model=model, optimizer=optimizer)
    with pytest.raises(ValueError, match="no scheduler state"):
        checkpoint.load_checkpoint(tmp_path / "w.pt", model=model, scheduler=scheduler)
