"""oracle.fuzz: `numpy-ninja check-layer` and check_layer, which fuzz anyone's layer against
autograd (a torch twin) or torch-free, and shrink a failure to the smallest input
(docs/layer-protocol.md).

May import numpy_ninja, hypothesis, oracle.reference (only when a twin is given: then torch)
and oracle's private modules; never another product (oracle.grade, oracle.compare)."""
from oracle.fuzz.harness import Counterexample, LayerCheckError, LayerReport, check_layer

__all__ = ["Counterexample", "LayerCheckError", "LayerReport", "check_layer"]
