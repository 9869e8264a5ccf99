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
    rows = p["ours"].shape[0]  # 32 for the lecture's batch; every position of a batch of words
    fig, axes = plt.subplots(1, 3, figsize=(12, min(12, max(4, rows / 24))))
    for ax, (title, img) in zip(axes, [("numpy dlogits", p["ours"]), ("torch dlogits", p["ref"]),
                                       ("difference", p["ours"] - p["ref"])]):
        # each panel fills its column whatever the shape; the colour bar gives its own scale, so
        # that a difference of rounding size is not read as one of dlogits' size
        fig.colorbar(ax.imshow(img, cmap="gray", aspect="auto"), ax=ax, shrink=0.8)
        ax.set_title(f"{title} (float32)")
        ax.set(xlabel="vocabulary", ylabel="row" if rows <= 32 else "position (word by word)")
    fig.tight_layout()
    save_png(fig, out / "dlogits.png")
    return []
