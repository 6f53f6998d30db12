"""User-defined PyTorch modules for the tests (imported as 'deep_models:Class')."""

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, n_features: int, n_classes: int, width: int = 16):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(n_features, width), nn.Tanh())
        self.head = nn.Linear(width, n_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


class BesselNet(nn.Module):
    """Uses an operator the ONNX exporter has no translation for."""

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.head(torch.special.bessel_j0(x))


class NotAModule:
    pass


class Plain(nn.Module):
    """No backbone and head: cannot be fine-tuned by freezing one and replacing the other."""

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        self.weight = nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.weight(x)


class TwoHeads(nn.Module):
    """Returns a tuple (logits, hidden features), as many research models do."""

    def __init__(self, n_features: int, n_classes: int, width: int = 8):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(n_features, width), nn.Tanh())
        self.head = nn.Linear(width, n_classes)

    def forward(self, x):
        hidden = self.backbone(x)
        return self.head(hidden), hidden


class Branchy(nn.Module):
    """Branches in Python on a tensor's value: torch.export cannot trace it."""

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, x):
        if x.sum() > 0:
            return self.head(x)
        return -self.head(x)
