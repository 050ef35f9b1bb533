"""A logistic probe: a linear reading of a property from fixed vectors (the polarity of a word
from its sentence encoding; a review's label from its encoding)."""

from __future__ import annotations


def fit_probe(x, y, l2: float = 1e-3):
    """Weights (d + 1) of an L2-regularised logistic regression, classes weighted to balance."""
    import torch

    weights = torch.zeros(x.shape[1] + 1, requires_grad=True)
    positive = float(y.mean())
    balance = torch.where(y > 0, 0.5 / positive, 0.5 / (1 - positive))
    optimizer = torch.optim.LBFGS([weights], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        logits = x @ weights[:-1] + weights[-1]
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none") * balance).mean()
        loss = loss + l2 * (weights[:-1] ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach()


def probe_scores(weights, x):
    return x @ weights[:-1] + weights[-1]
