"""One thread for the oracle's tiny tensors. torch's intra-op threads and NumPy's BLAS threads gain
nothing on tensors this small, and on a busy 2-core machine a second thread waits on one that
does not run: `numpy-ninja compare` took 5 s alone and 165 s beside two busy processes."""
from numpy_ninja.train import blas_threads


def one_thread():
    """torch on one thread from now on; a context in which NumPy's BLAS runs on one thread."""
    import torch

    torch.set_num_threads(1)
    return blas_threads(1)
