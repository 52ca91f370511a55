"""The two networks of the series: the Regularization chapter's LeNet and the small recipe CNN."""

from collections import OrderedDict

import torch
from torch import nn


def check_images(X: torch.Tensor, model_name: str) -> None:
    """Raise a ValueError that says what is wrong when X is not a batch of (1, 28, 28) images."""
    if X.dim() == 2:
        raise ValueError(
            f"{model_name} got a 2-D tensor of shape {tuple(X.shape)}: the images were flattened. "
            "A CNN needs them shaped (N, 1, 28, 28); drop the .view(N, -1) / flatten before the "
            "model, or restore the shape with X.view(-1, 1, 28, 28).")
    if X.dim() == 3:
        raise ValueError(
            f"{model_name} got a 3-D tensor of shape {tuple(X.shape)}: the channel dimension is "
            "missing. A CNN needs (N, 1, 28, 28); add it with X.unsqueeze(1).")
    if X.dim() != 4 or X.shape[1] != 1:
        raise ValueError(f"{model_name} expects images shaped (N, 1, 28, 28), "
                         f"got {tuple(X.shape)}.")


class LeNet(nn.Module):
    """The Regularization chapter's LeNet for (N, 1, 28, 28) images. `batch_norm`: BatchNorm2d
    between each convolution and its ReLU; `dropout`: p of the Dropout that ends the body."""
    # Feature map shapes beside the layers; dropout=0 keeps the Dropout layer, as an identity.

    def __init__(self, *, batch_norm: bool = False, dropout: float = 0.0, num_classes: int = 10):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a probability in [0, 1), got {dropout}.")
        self.batch_norm, self.dropout = batch_norm, dropout   # notebook 07's subclasses read these

        def block(index, in_channels, out_channels, kernel_size, pool):
            layers = {f"conv{index}": nn.Conv2d(in_channels, out_channels, kernel_size),
                      f"bn{index}": nn.BatchNorm2d(out_channels) if batch_norm else None,
                      f"relu{index}": nn.ReLU(), f"pool{index}": nn.MaxPool2d(2) if pool else None}
            return [(name, layer) for name, layer in layers.items() if layer is not None]

        self.features = nn.Sequential(OrderedDict(
            block(1, 1, 16, 5, pool=False)            # (N, 16, 24, 24)
            + block(2, 16, 32, 5, pool=True)          # (N, 32, 10, 10)
            + block(3, 32, 64, 3, pool=True)          # (N, 64, 4, 4)
            + [("dropout", nn.Dropout(dropout))]))
        self.classifier = nn.Sequential(OrderedDict([   # flatten: (N, 1024)
            ("flatten", nn.Flatten()), ("fc", nn.Linear(64 * 4 * 4, num_classes))]))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_images(X, "LeNet")
        return self.classifier(self.features(X))      # (N, num_classes) logits


class SimpleCNN(nn.Module):
    """The second recipe's CNN: conv 1->8 (3x3, pad 1), pool, conv 8->16, pool, fc 16*7*7->10."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(1, 8, 3, padding=1)), ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(2)),               # (N, 8, 14, 14)
            ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(2))]))             # (N, 16, 7, 7)
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("fc", nn.Linear(16 * 7 * 7, num_classes))]))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_images(X, "SimpleCNN")
        return self.classifier(self.features(X))

