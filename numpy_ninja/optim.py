"""Optimizers over Parameter objects (torch.optim-like)."""
import numpy as np


class SGD:
    """Plain SGD: p.data -= lr * p.grad for every parameter.

    At construction the parameters' .data and .grad become views into two flat arrays (values
    kept), so a step is one fused update; arrays taken from the model afterwards (state_dict(),
    p.data) stay the live ones for the optimizer's life.
    """

    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr
        self.data = np.concatenate([p.data.ravel() for p in self.params])
        self.grad = np.zeros_like(self.data)
        offset = 0
        for p in self.params:
            size, shape = p.data.size, p.data.shape
            p.data = self.data[offset:offset + size].reshape(shape)
            p.grad = self.grad[offset:offset + size].reshape(shape)
            offset += size

    def step(self):
        self.data -= self.lr * self.grad
