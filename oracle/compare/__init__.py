"""oracle.compare: `numpy-ninja compare`, the NumPy-vs-PyTorch report: the lecture's 26
gradients, the one-step backward, every parameter gradient of a model, lockstep training.

May import numpy_ninja, torch, oracle.reference and oracle's private modules; never another
product (oracle.grade, oracle.fuzz)."""
