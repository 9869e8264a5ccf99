"""oracle.convert: `numpy-ninja export` and `numpy-ninja import`, models moved between
numpy-ninja and karpathy/makemore's makemore.py.

    to_makemore.py     a numpy-ninja checkpoint as makemore.py's model.pt (a torch state_dict)
    from_makemore.py   makemore.py's model.pt as a numpy-ninja run directory at step 0
    cli.py             the two commands

A makemore model's parameter names in numpy-ninja are makemore.py's state_dict names; only the
layout of a Linear weight differs (numpy-ninja keeps it (fan_in, fan_out), torch (fan_out,
fan_in)) and makemore's state_dict also holds the causal masks its attention registers as
buffers. Both directions go through numpy_ninja.models' ``makemore_state_dict`` and
``load_makemore_state_dict``, and the export through oracle.reference.makemore's torch models,
which have makemore.py's module tree: what it writes has loaded there, strictly, first.

May import numpy_ninja, torch, oracle.reference and oracle's private modules; never another
product (oracle.grade, oracle.fuzz, oracle.compare)."""
