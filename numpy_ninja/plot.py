"""Pictures, when matplotlib is installed (the `plot` extra): written atomically, drawn off screen."""
import numpy as np

from .files import write_atomic

MISSING = "matplotlib is not installed (pip install 'numpy-ninja[plot]')"


def pyplot():
    """matplotlib.pyplot drawing off screen (Agg), or None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_png(fig, path):
    """The figure as a PNG at path, written atomically; the figure is closed either way."""
    import matplotlib.pyplot as plt
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)


def write_loss_plot(path, lossi):
    """loss.png: the loss averaged per 1,000 steps on a log scale. False if matplotlib is missing."""
    plt = pyplot()
    if plt is None:
        return False
    from matplotlib.ticker import FormatStrFormatter
    k = 1000 if len(lossi) >= 1000 else 1
    avg = np.asarray(lossi[:len(lossi) // k * k], np.float64).reshape(-1, k).mean(1)
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        ax.plot(np.arange(len(avg)) * k + k, avg)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
        ax.set_xlabel("step")
        ax.set_ylabel(f"training loss (mean of {k} steps)")
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    save_png(fig, path)
    return True
