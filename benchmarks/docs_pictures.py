"""Regenerate the README's pictures (docs/) from scratch with this tree's code.

    python benchmarks/docs_pictures.py [--out docs] [--data MNIST_DIR] [--screenshots] [--list]

LeNet-5's pictures come from the shipped checkpoints and the bundled samples (exemplars and
the optimisation baselines also read MNIST's test set, --data); the RGB ones from the worked
example examples/shapes.py, trained here first (~15 s). Every picture is one `convsee`
command's output, run in a scratch folder and copied under its docs name only once every
command has succeeded, so a failure leaves --out as it was. --screenshots also runs
benchmarks/screenshots.py (the live page in Chromium: LeNet-5's, a seeded ResNet-18's and the
shapes example's). --list prints the commands and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_MNIST

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHAPES = [
    "--model",
    f"{REPO / 'examples' / 'shapes.py'}:ShapesNet",
    "--checkpoint",
    "shapes.safetensors",
]
SHAPE_INPUTS = {  # test images of examples/shapes.py (seed 0), copied under their class names
    "circle.png": "shapes/test/circle/0005.png",
    "square.png": "shapes/test/square/0011.png",
    "triangle.png": "shapes/test/triangle/0008.png",
}

# (convsee arguments, {file the command writes: docs name}); {mnist} is --data
LENET = [
    (
        ["render"],
        {"samples.png": "samples.png", "conv1/3.png": "conv1_3.png", "conv2.gif": "conv2.gif"},
    ),
    (["render", "sample:3", "--layers", "fc3"], {"fc3/3.png": "fc3_3.png"}),
    (
        ["render", "sample:8", "--layers", "conv1", "--with-kernels"],
        {"conv1/8.png": "conv1_8_kernels.png"},
    ),
    (
        ["render", "--diff", "sample:7", "sample:1", "--layers", "conv1"],
        {"diff_conv1_sample_7_vs_sample_1.png": "diff_7_1.png"},
    ),
    (["render", "--kernels"], {"kernels.png": "kernels.png"}),
    (["render", "--dataset", "fashion-mnist"], {"samples.png": "fashion_samples.png"}),
    (
        ["exemplars", "--layers", "conv2", "--data", "{mnist}", "--quiet"],
        {"exemplars_conv2.png": "exemplars_conv2.png"},
    ),
    (
        ["optimize", "--layers", "conv2,fc3", "--data", "{mnist}"],
        {"optimize_conv2.png": "optimize_conv2.png", "optimize_fc3.png": "optimize_fc3.png"},
    ),
    (["animate"], {"animate_conv1_ch2.gif": "animate_conv1.gif"}),
    (["evolution", "--layers", "conv1"], {"evolution_conv1.gif": "evolution_conv1.gif"}),
    (["sweep", "--kind", "rotate"], {"sweep_rotate_conv1.gif": "sweep_rotate.gif"}),
    (
        ["attribution", "sample:7", "--layers", "conv2"],
        {"attribution_sample_7_7.png": "attribution_7.png"},
    ),
]
RGB = [
    (
        ["render", *SHAPE_INPUTS, "--layers", "conv1", *SHAPES],
        {"samples.png": "shapes_samples.png", "conv1/triangle.png": "shapes_conv1.png"},
    ),
    (
        ["attribution", "triangle.png", *SHAPES],
        {"attribution_triangle_2.png": "shapes_attribution.png"},
    ),
    (
        ["exemplars", "--layers", "block", "--channels", "top:12", "-k", "8"]
        + ["--data", "shapes/test", "--quiet", *SHAPES],
        {"exemplars_block.png": "shapes_exemplars_block.png"},
    ),
    (
        ["optimize", "--layers", "fc", "--data", "shapes/test", *SHAPES],
        {"optimize_fc.png": "shapes_optimize_fc.png"},
    ),
    (["animate", "triangle.png", *SHAPES], {"animate_conv1_ch2.gif": "shapes_animate_conv1.gif"}),
    (
        ["sweep", "triangle.png", "--kind", "occlude", "--layers", "block", *SHAPES],
        {"sweep_occlude_block.gif": "shapes_occlude_block.gif"},
    ),
]

# facenet-pytorch's PNet (pip install --no-deps facenet-pytorch) on skimage's astronaut
PNET = [
    "predict",
    "astronaut.png",
    "--model",
    f"{REPO / 'examples' / 'mtcnn.py'}:pnet",
    "--preprocess",
    f"{REPO / 'examples' / 'mtcnn.json'}",
    "--input-size",
    "3,52,52",
    "--output",
    "1",
    "--map-class",
    "face",
    "--map",
]
PNET_FILES = {"astronaut.png": "pnet_face_map.png"}


def run(cmd: list[str], cwd: Path, env: dict) -> float:
    """Run one command in cwd; its output is shown only when it fails. Seconds taken."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the pictures")
    ap.add_argument("--data", type=Path, default=SHARED_MNIST, help="MNIST's IDX files")
    ap.add_argument("--screenshots", action="store_true", help="also the live page's screenshots")
    ap.add_argument("--list", action="store_true", help="print the commands, write nothing")
    a = ap.parse_args()
    jobs = [("lenet", args, files) for args, files in LENET]
    jobs += [("shapes", args, files) for args, files in RGB]
    train = [sys.executable, str(REPO / "examples" / "shapes.py"), "shapes", "shapes.safetensors"]
    if a.list:
        print("python examples/shapes.py shapes shapes.safetensors")
        for name, src in SHAPE_INPUTS.items():
            print(f"cp {src} {name}")
        for _, args, files in jobs:
            cmd = " ".join(x.replace(str(REPO) + "/", "") for x in args)
            print(f"convsee {cmd.format(mnist=a.data)}  ->  {', '.join(files.values())}")
        cmd = " ".join(x.replace(str(REPO) + "/", "") for x in PNET)
        print(f"convsee {cmd} DIR  ->  {', '.join(PNET_FILES.values())} (astronaut.png: skimage's)")
        shots = "serve_desktop.png, serve_phone.png, serve_rgb.png, serve_shapes.png"
        print(f"with --screenshots: benchmarks/screenshots.py --shapes .  ->  {shots}")
        return 0
    path = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}  # this tree's convsee
    with tempfile.TemporaryDirectory(prefix="convsee-docs-") as tmp:
        work = Path(tmp)
        print(f"training examples/shapes.py ... {run(train, work, env):.1f} s")
        for name, src in SHAPE_INPUTS.items():
            shutil.copyfile(work / src, work / name)
        made = {}  # docs name -> file in work
        for n, (_, args, files) in enumerate(jobs):
            out = work / "out" / str(n)
            args = [x.format(mnist=a.data) for x in args]
            cmd = [sys.executable, "-m", "convsee", *args, "--out", str(out)]
            seconds = run(cmd, work, env)
            print(f"convsee {' '.join(args).replace(str(REPO) + '/', '')}  {seconds:.1f} s")
            made.update({docs: out / produced for produced, docs in files.items()})
        from PIL import Image
        from skimage import data

        Image.fromarray(data.astronaut()).save(work / "astronaut.png")
        out = work / "out" / "pnet"
        seconds = run([sys.executable, "-m", "convsee", *PNET, str(out)], work, env)
        print(f"convsee predict astronaut.png ... --map (PNet)  {seconds:.1f} s")
        made.update({docs: out / produced for produced, docs in PNET_FILES.items()})
        if a.screenshots:  # the live page, LeNet-5's and the shapes example's
            shots = work / "shots"
            cmd = [sys.executable, str(HERE / "screenshots.py"), "--out", str(shots)]
            print(f"screenshots ... {run([*cmd, '--shapes', str(work)], HERE, env):.1f} s")
            made.update({p.name: p for p in sorted(shots.glob("*.png"))})
        a.out.mkdir(parents=True, exist_ok=True)
        for docs, src in made.items():
            shutil.copyfile(src, a.out / docs)
            size = src.stat().st_size
            warn = "  (over 1 MB: heavy for the README)" if size > 1 << 20 else ""
            print(f"  {a.out / docs}  {size / 1024:.0f} KB{warn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
