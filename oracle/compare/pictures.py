"""compare's pictures (--out, with matplotlib): the lockstep losses, the parameters' divergence,
and dlogits as images."""
from numpy_ninja.plot import MISSING, pyplot, save_png


def write_pictures(out, report, pictures):
    """lockstep_loss.png, divergence.png and dlogits.png into the directory `out`; returns the
    lines to tell the user (why they were skipped), or []."""
    plt = pyplot()
    if plt is None:
        return [f"pictures skipped: {MISSING}"]
    curves = report["lockstep"]["curves"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for dtype, c in curves.items():
        ax.plot(c["ours"], label=f"numpy {dtype}", lw=1)
        ax.plot(c["torch"], label=f"torch {dtype}", lw=1, ls="--")
    ax.set(xlabel="step", ylabel="batch loss", title="lockstep training")
    ax.legend()
    save_png(fig, out / "lockstep_loss.png")
    fig, ax = plt.subplots(figsize=(8, 4))
    for dtype, c in curves.items():
        ax.plot([max(d, 1e-300) for d in c["divergence"]], label=dtype)
    ax.set(yscale="log", xlabel="step", ylabel="max relative parameter difference",
           title="numpy vs torch parameters")
    ax.legend()
    save_png(fig, out / "divergence.png")
    p = pictures["float32"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (title, img) in zip(axes, [("numpy dlogits", p["ours"]), ("torch dlogits", p["ref"]),
                                       ("difference", p["ours"] - p["ref"])]):
        ax.imshow(img, cmap="gray")
        ax.set_title(f"{title} (float32)")
    save_png(fig, out / "dlogits.png")
    return []
