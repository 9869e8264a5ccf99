"""The PyTorch side of numpy-ninja: reference gradients by autograd, the reports that compare,
and ``check_layer`` (oracle.layercheck), loaded on first use so that importing oracle imports
neither torch nor hypothesis."""


def __getattr__(name):
    if name == "check_layer":
        from oracle.layercheck import check_layer
        return check_layer
    raise AttributeError(f"module 'oracle' has no attribute {name!r}")
