"""Dropout kept on at test time (MC dropout), and calibration: ECE, reliability bins, entropy."""

import contextlib

import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd  # the base of Dropout, Dropout1d/2d/3d, ...

from course_utils._checks import check_whole


@contextlib.contextmanager
def mc_dropout(model: nn.Module):
    """Inside the block only dropout layers drop (BatchNorm stays in eval); all flags come back."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        for module, _ in flags:    # one flag at a time: module.train() would recurse
            module.training = isinstance(module, _DropoutNd)
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def mc_probabilities(model: nn.Module, X, samples: int) -> torch.Tensor:
    """Softmax probabilities under T = `samples` dropout masks, (T, N, C), without gradients.
    X is a batch (N, ...) or a loader of (X, y) batches, joined along N in loader order."""
    samples = check_whole(samples, "samples (the number of dropout masks)", 1)
    device = next(model.parameters()).device
    batches = [X] if isinstance(X, torch.Tensor) else [batch[0] for batch in X]   # loader: X, y
    with torch.no_grad(), mc_dropout(model):
        return torch.stack([torch.cat([model(b.to(device)).softmax(dim=1) for b in batches])
                            for _ in range(samples)]).cpu()


def predictive_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Entropy in nats over the last dimension, (..., C) -> (...): 0 one-hot, ln C uniform."""
    return -torch.xlogy(probabilities, probabilities).sum(dim=-1)       # 0 · ln 0 counts as 0


def calibration_bins(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15):
    """The reliability diagram's numbers: confidence (top-class probability) in `bins` equal bins,
    right-closed; each bin's count, accuracy and mean confidence, (bins,) each, NaN when empty."""
    # The bins: (0, 1/bins], (1/bins, 2/bins], ..., ((bins-1)/bins, 1].
    if probabilities.dim() != 2 or labels.shape != probabilities.shape[:1] or not len(labels):
        raise ValueError(f"expected probabilities (N, C) and labels (N,), N > 0; got "
                         f"{tuple(probabilities.shape)}, {tuple(labels.shape)} (average T first)")
    bins = check_whole(bins, "bins", 1)
    confidence, predicted = probabilities.double().max(dim=1)
    # bucketize on the inner edges puts confidence in (m/bins, (m+1)/bins] into bin m.
    index = torch.bucketize(confidence, torch.arange(1, bins, dtype=torch.float64) / bins)
    count = torch.bincount(index, minlength=bins).double()
    correct = torch.bincount(index, (predicted == labels.to(predicted.device)).double(), bins)
    confidence_sum = torch.bincount(index, confidence, minlength=bins)
    count_or_nan = torch.where(count > 0, count, torch.nan)      # an empty bin: NaN, not 0/0
    return count, correct / count_or_nan, confidence_sum / count_or_nan


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor,
                               bins: int = 15) -> float:
    """Guo et al. 2017: the bins' |accuracy - mean confidence|, weighted by share; 0 is perfect."""
    count, accuracy, confidence = calibration_bins(probabilities, labels, bins)
    gaps = (accuracy - confidence).abs().nan_to_num(0.0)       # an empty bin weighs nothing
    return (count / count.sum() * gaps).sum().item()
