"""Splits, subsets and TensorLoader; where the files come from is tested in test_sources.py."""

import pytest
import torch

from course_utils import data


# ----------------------------------------------------------------------------- subsets and splits

def test_subset_argument_is_stratified_and_seeded(mini):
    train, _ = mini
    small = data.stratified_subset(train, 105, seed=3)
    counts = torch.bincount(small.labels, minlength=10)
    assert counts.sum() == 105 and counts.max() - counts.min() <= 1
    assert torch.equal(data.stratified_subset(train, 105, seed=3).images, small.images)
    assert not torch.equal(data.stratified_subset(train, 105, seed=4).labels, small.labels)
    assert data.stratified_subset(train, None) is train             # None keeps the whole split
    with pytest.raises(ValueError, match="subset"):
        data.stratified_subset(train, 0)


def test_train_val_split_is_disjoint_and_seeded(mini):
    train, _ = mini
    part, val = data.train_val_split(train, val_size=0.2, seed=1)
    assert (len(part), len(val)) == (4000, 1000)
    keys = lambda split: {bytes(x.numpy()) for x in split.images}  # noqa: E731
    assert not keys(part) & keys(val)
    again, _ = data.train_val_split(train, val_size=0.2, seed=1)
    assert torch.equal(again.images, part.images)
    with pytest.raises(ValueError, match="leaves no"):
        data.train_val_split(train, val_size=len(train))


def test_lesson_split_keeps_the_sizes_asked_for_when_the_data_is_large_enough(mini, capsys):
    train, _ = mini                                         # the bundled 5,000 images
    part, val = data.lesson_split(train, val_size=1000, train_size=2000, seed=1)
    assert (len(part), len(val)) == (2000, 1000) and capsys.readouterr().out == ""
    same, _ = data.train_val_split(train, val_size=1000, seed=1)
    assert torch.equal(data.stratified_subset(same, 2000, seed=1).images, part.images)


def test_lesson_split_shrinks_to_the_data_and_says_so(mini, capsys):
    train, _ = mini
    part, val = data.lesson_split(train, val_size=5000, seed=0)   # full mode's 5,000
    assert (len(part), len(val)) == (4000, 1000)
    assert "holding out 1,000 for validation instead of 5,000" in capsys.readouterr().out


# ----------------------------------------------------------------------------- TensorLoader

def _indexed_split(n):
    """A split whose pixel 0 and 1 encode the sample's index, so batches reveal their rows."""
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 0, 0], images[:, 0, 1] = torch.arange(n) % 256, torch.arange(n) // 256
    return data.Split(images, torch.arange(n) % 10, data.FASHION_MNIST_CLASSES,
                      data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD)


def _rows(batch, split):
    pixels = torch.round((batch[:, 0, 0, :2] * split.std + split.mean) * 255).long()
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


def _epoch(loader, split):
    return [row for X, _ in loader for row in _rows(X, split)]


def test_loader_covers_every_sample_once_per_epoch():
    split = _indexed_split(1000)
    loader = data.TensorLoader(split, 64, shuffle=True, seed=0)
    assert len(loader) == 16
    first, second = _epoch(loader, split), _epoch(loader, split)
    assert sorted(first) == sorted(second) == list(range(1000))
    assert first != second, "each epoch should have its own order"


def test_loader_order_depends_only_on_seed_and_epoch():
    split = _indexed_split(300)
    a, b = (data.TensorLoader(split, 32, shuffle=True, seed=7) for _ in range(2))
    assert _epoch(a, split) == _epoch(b, split)
    a.set_epoch(5), b.set_epoch(5)
    assert _epoch(a, split) == _epoch(b, split)
    other = data.TensorLoader(split, 32, shuffle=True, seed=8)
    assert _epoch(other, split) != _epoch(data.TensorLoader(split, 32, shuffle=True, seed=7), split)
    assert _epoch(data.TensorLoader(split, 32), split) == list(range(300))


def test_loader_drop_last_and_batch_contents():
    split = _indexed_split(100)
    loader = data.TensorLoader(split, 32, shuffle=True, drop_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert all(X.shape == (32, 1, 28, 28) and y.shape == (32,) for X, y in batches)
    assert len(data.TensorLoader(split, 32)) == 4
    X, y = batches[0]
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    rows = _rows(X, split)
    assert torch.equal(y, split.labels[rows])
    expected = (split.images[rows].float() / 255 - split.mean) / split.std
    assert torch.allclose(X[:, 0], expected, atol=1e-6)


def test_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        data.TensorLoader(_indexed_split(10), 0)


def test_loader_batches_are_channels_last_and_train_like_plain_ones(mini):
    """The fast default: channels-last batches. Still an ordinary (B, 1, 28, 28) tensor to a
    learner (contiguous, .view works), the same numbers, and the model computes the same."""
    from course_utils import models

    train, _ = mini
    X, _ = next(iter(data.TensorLoader(train, 16)))
    assert X.is_contiguous() and X.view(16, -1).shape == (16, 784)
    plain = X.clone(memory_format=torch.contiguous_format)
    # With one channel both layouts hold the same bytes; the stride of the channel tells them
    # apart, and the convolution follows it.
    assert torch.equal(X, plain) and (X.stride(1), plain.stride(1)) == (1, 784)
    torch.manual_seed(0)
    model = models.LeNet(batch_norm=True).eval()
    assert model.features.conv1(X).is_contiguous(memory_format=torch.channels_last)
    assert not model.features.conv1(plain).is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(model(X), model(plain), atol=1e-5)
    assert all(p.is_contiguous() for p in model.parameters())      # weights keep torch's layout
