"""Time `convsee render` against a re-creation of the original project's pyplot pipeline.

The original reloads the model for every figure, draws each with pyplot (one subplot per
channel, each map on its own range) and saves 45 files: samples.png, conv1/conv2 grids for
ten digits plain and blurred, and four 10-frame GIFs. Both run here as whole processes,
alternately, several times; the medians and their ratio go to stdout and
benchmarks/out/render.json, with convsee's in-process time per grid PNG and per GIF.

    python benchmarks/bench_render.py [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import add_quick, save_result


def original_pipeline(out: Path) -> None:
    """The original's way: pyplot figures, the model loaded from disk for each one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from convsee.datasets.inputs import samples
    from convsee.models.checkpoint import default_checkpoint, load_state_dict_file
    from convsee.models.lenet import LeNet5

    weights = load_state_dict_file(default_checkpoint())
    pth = out / "model.pth"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(weights, pth)
    digits = samples()

    def load_model():
        m = LeNet5()
        m.load_state_dict(torch.load(pth, weights_only=True))
        return m.eval()

    def blur(maps, k, sigma):
        half = (k - 1) / 2
        g = torch.exp(-0.5 * (torch.linspace(-half, half, k) / sigma) ** 2)
        g = g / g.sum()
        k2 = (g[:, None] * g[None, :])[None, None]
        x = maps.reshape(-1, 1, *maps.shape[-2:])
        return F.conv2d(F.pad(x, (k // 2,) * 4, mode="reflect"), k2).reshape(maps.shape)

    fig, axes = plt.subplots(2, 5, figsize=(10, 4))
    for ax, s in zip(axes.ravel(), digits, strict=True):
        ax.imshow(s.image, cmap="gray")
        ax.set_title(f"label {s.label}")
        ax.axis("off")
    fig.savefig(out / "samples.png")
    plt.close(fig)
    for layer, (k, sigma) in (("conv1", (5, 3)), ("conv2", (3, 3))):
        (out / layer).mkdir(exist_ok=True)
        for blurred in (False, True):
            frames = []
            for s in digits:
                model = load_model()  # the original reloaded the model for every figure
                acts = {}
                hook = getattr(model, layer).register_forward_hook(
                    lambda m, i, o, acts=acts: acts.__setitem__("a", o.detach())
                )
                x = (torch.from_numpy(s.image)[None, None] - 0.1307) / 0.3081
                model(x)
                hook.remove()
                maps = acts["a"][0]
                if blurred:
                    maps = blur(maps, k, sigma)
                c = maps.shape[0]
                fig, axes = plt.subplots(
                    1 + (c > 8), (c + 1) // (1 + (c > 8)) + 1, figsize=(16, 4 if c <= 8 else 6)
                )
                axes = axes.ravel()
                axes[0].imshow(s.image, cmap="gray")
                axes[0].set_title("input")
                for i in range(c):
                    axes[i + 1].imshow(maps[i].numpy(), cmap="viridis")  # own range per map
                    axes[i + 1].set_title(f"channel {i}")
                for ax in axes:
                    ax.axis("off")
                name = f"{s.label}{'_blur' if blurred else ''}.png"
                fig.savefig(out / layer / name)
                buf = io.BytesIO()
                fig.savefig(buf, format="png")
                plt.close(fig)
                frames.append(Image.open(buf).convert("RGB"))
            frames[0].save(
                out / f"{layer}{'_blur' if blurred else ''}.gif",
                save_all=True,
                append_images=frames[1:],
                duration=1000,
                loop=0,
            )


def whole_process(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def in_process(reps: int = 3) -> dict:
    """convsee's own time per grid PNG (drawn and encoded) and per 10-frame GIF, after start-up,
    through the public API (Network.activations, Network.render, Figure images)."""
    import convsee
    from convsee.draw.core import save_gif

    net = convsee.load()
    inputs = [f"sample:{d}" for d in range(10)]
    t = time.perf_counter()
    net.activations(inputs, "conv1,conv2")
    result = {"forward_10_inputs_ms": (time.perf_counter() - t) * 1e3}
    for layer in ("conv1", "conv2"):
        png_ms, frames = [], []
        for rep in range(reps):
            for inp in inputs:
                t = time.perf_counter()
                figs = [f for f in net.render(inp, layers=layer) if "_blur" not in f.name]
                png_ms.append((time.perf_counter() - t) * 1e3 / max(len(figs), 1))
                if rep == 0:
                    frames.append(figs[0].image)
        gif_ms = []
        for _ in range(reps):
            t = time.perf_counter()
            save_gif(frames, io.BytesIO(), 1000)
            gif_ms.append((time.perf_counter() - t) * 1e3)
        result[f"{layer}_grid_png_ms_median"] = statistics.median(png_ms)
        result[f"{layer}_gif_ms_median"] = statistics.median(gif_ms)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--original", metavar="DIR", help=argparse.SUPPRESS)
    add_quick(ap)
    a = ap.parse_args()
    if a.quick:
        a.runs = 1
    if a.original:
        original_pipeline(Path(a.original))
        return 0
    ours, orig = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.runs):
            ours.append(whole_process(["convsee", "render", "--out", f"{d}/ours{i}"]))
            orig.append(whole_process([sys.executable, __file__, "--original", f"{d}/orig{i}"]))
        n_ours = len([p for p in Path(f"{d}/ours0").rglob("*") if p.suffix in (".png", ".gif")])
        n_orig = len([p for p in Path(f"{d}/orig0").rglob("*") if p.suffix in (".png", ".gif")])
    result = {
        "files_convsee": n_ours,
        "files_original": n_orig,
        "convsee_render_whole_process_s": ours,
        "original_pipeline_whole_process_s": orig,
        "convsee_median_s": statistics.median(ours),
        "original_median_s": statistics.median(orig),
        "speedup": statistics.median(orig) / statistics.median(ours),
        **in_process(1 if a.quick else 3),
    }
    return save_result("render", result, a.quick)


if __name__ == "__main__":
    sys.exit(main())
