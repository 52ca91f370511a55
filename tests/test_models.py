import pytest
import torch
from torch import nn

from course_utils.models import LeNet, SimpleCNN


def layer_types(sequential):
    return [type(layer).__name__ for layer in sequential]


def test_lenet_body_is_the_chapters_order():
    plain = LeNet()
    assert layer_types(plain.features) == [
        "Conv2d", "ReLU",
        "Conv2d", "ReLU", "MaxPool2d",
        "Conv2d", "ReLU", "MaxPool2d", "Dropout"]
    with_bn = LeNet(batch_norm=True, dropout=0.25)
    assert layer_types(with_bn.features) == [
        "Conv2d", "BatchNorm2d", "ReLU",
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Dropout"]
    convs = [m for m in with_bn.features if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 16, (5, 5)), (16, 32, (5, 5)), (32, 64, (3, 3))]
    assert [m.num_features for m in with_bn.features if isinstance(m, nn.BatchNorm2d)] == [
        16, 32, 64]
    assert with_bn.features.dropout.p == 0.25 and plain.features.dropout.p == 0.0


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_lenet_shapes(batch_norm, dropout):
    model = LeNet(batch_norm=batch_norm, dropout=dropout)
    X = torch.randn(5, 1, 28, 28)
    assert model.features(X).shape == (5, 64, 4, 4)
    assert model(X).shape == (5, 10)
    assert LeNet(num_classes=3)(X).shape == (5, 3)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_parameter_counts():
    # conv1 16*25+16, conv2 32*16*25+32, conv3 64*32*9+64, fc 1024*10+10
    plain = 416 + 12_832 + 18_496 + 10_250
    assert count_parameters(LeNet()) == plain
    assert count_parameters(LeNet(batch_norm=True)) == plain + 2 * (16 + 32 + 64)


@pytest.mark.parametrize("model", [LeNet(), SimpleCNN()], ids=["LeNet", "SimpleCNN"])
def test_flattened_input_is_explained(model):
    with pytest.raises(ValueError) as error:
        model(torch.randn(4, 784))
    message = str(error.value)
    assert "flattened" in message and "(N, 1, 28, 28)" in message and "(4, 784)" in message
    with pytest.raises(ValueError, match="channel dimension is missing"):
        model(torch.randn(4, 28, 28))
    with pytest.raises(ValueError, match="expects images shaped"):
        model(torch.randn(4, 3, 28, 28))


def test_simple_cnn_is_the_recipes_network():
    model = SimpleCNN()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 8, (3, 3), (1, 1)), (8, 16, (3, 3), (1, 1))]
    assert model.classifier.fc.in_features == 16 * 7 * 7
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match="probability"):
        LeNet(dropout=1.0)
