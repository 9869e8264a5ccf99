"""oracle.reference: the torch side every oracle product shares. The lecture's broken-up graph
in torch (graph.py), the torch twin of any numpy_ninja network (twin.py), the magnitudes of the
terms each gradient is summed from (scales.py), and two trainings side by side (lockstep.py).

May import numpy_ninja, torch and the other modules here; never a product (oracle.grade,
oracle.fuzz, oracle.compare) nor oracle's private command modules."""
