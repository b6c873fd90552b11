"""`convsee attribution`."""

from __future__ import annotations

import time

import numpy as np

from ..draw.render import finish
from ..errors import ConvseeError
from .options import Formatter, add_data, add_inputs, add_model, add_out

HELP = "which pixels decide a class: saliency and Grad-CAM"
DESCRIPTION = """which pixels decide a class: saliency (|d score / d pixel|) and Grad-CAM at a
map layer, for the predicted class or --target, drawn over the input with their colour scales.
Writes OUT/attribution_{input}_{class}.png and a JSON sidecar with the numbers."""


def add(sub) -> None:
    at = sub.add_parser(
        "attribution", help=HELP, description=DESCRIPTION, formatter_class=Formatter
    )
    add_inputs(at, default_help="sample:3 sample:7")
    add_model(at)
    add_data(at, help_data="folder with the dataset's IDX files (for test:N, train:N)")
    at.add_argument(
        "--layer",
        metavar="L",
        help="Grad-CAM layer: any map layer from `convsee layers` (default: the last map a "
        "convolution outputs; LeNet-5: conv2)",
    )
    at.add_argument("--target", type=int, help="class index (default: the prediction)")
    add_out(at, "media")
    at.set_defaults(func=run)


def stem_of(inp) -> str:
    """sample:3 -> sample_3, photo.jpg -> photo, test:12 -> test_12."""
    from pathlib import Path

    from ..draw.render import _safe

    name = inp.name
    if inp.source and "." in Path(name).name and not name.startswith(("test:", "train:")):
        name = Path(name).stem
    return _safe(name)


def rgb_png(img) -> bytes:
    import io

    from ..draw.core import save_image

    buf = io.BytesIO()
    save_image(img, buf)
    return buf.getvalue()


def run(a) -> int:
    from ..draw.attribution import attribution_image
    from ..draw.render import sidecar
    from ..run.attribution import attribute, default_cam_layer
    from .options import network, out_dir_ok

    t0 = time.perf_counter()
    out_dir_ok(a.out)
    net = network(a, need_torch=True)
    spec = net.spec
    if not spec.layers:
        raise ConvseeError("attribution needs the model's layers; this program has none to hook")
    out = next(
        (o for o in spec.outputs if o.name == (net.output or spec.outputs[0].name)),
        spec.outputs[0],
    )
    if len(out.shape) != 1:
        shape = "x".join(map(str, out.shape)) or "a scalar"
        raise ConvseeError(
            f"attribution needs one score per class; the model's output is {shape} per input"
            + (" (choose another with --output)" if len(spec.outputs) > 1 else "")
        )
    k = out.shape[0]
    if a.target is not None and not 0 <= a.target < k:
        raise ConvseeError(f"--target must be 0..{k - 1}, got {a.target}")
    layer = spec.layer(a.layer) if a.layer else default_cam_layer(spec)
    if layer.kind != "map":
        shape = "x".join(map(str, layer.shape)) or "a scalar"
        maps = [x.name for x in spec.layers if x.kind == "map"]
        some = ", ".join(maps[:8]) + (", ..." if len(maps) > 8 else "")
        raise ConvseeError(
            f"--layer {layer.name} outputs {shape} per input, not maps (C,H,W); "
            f"map layers: {some or 'none'}"
        )
    model = net.torch_model()
    classes = net.class_names(k)
    std = net.prep.channel_std()
    inputs = net.inputs(a.inputs or ["sample:3", "sample:7"], a.data, a.dataset)
    files = {}
    colour = net.prep.channels == 3
    which = f"output '{net.output}'" if net.output is not None else "the output"
    for inp in inputs:
        r = attribute(model, inp.x, layer, a.target, output=net.output, output_spec=out, std=std)
        probs = net.predict([inp])[0]
        pred = probs.prediction
        name = classes[r.target]
        what = {
            "logit": f"the logit of class '{name}'",
            "probability": f"the probability of class '{name}' ({which} is already "
            "probabilities, so that is what is differentiated)",
            "log-probability": f"the log-probability of class '{name}' ({which} is a log-softmax)",
        }[r.quantity]
        f = r.field
        if r.field_known:
            placing = (
                f"Grad-CAM at {layer.name} ({'x'.join(map(str, layer.shape))}): each map pixel "
                f"placed at the centre of its {f.size[0]}x{f.size[1]} receptive field (first "
                f"centre at {f.start[0]:g},{f.start[1]:g}, {f.stride[0]:g} px apart), "
                "bilinear in between"
            )
        elif layer.field is not None and layer.field.whole:
            placing = (
                f"Grad-CAM at {layer.name} ({'x'.join(map(str, layer.shape))}): each map pixel "
                "sees the whole input, so the map is stretched over it"
            )
        else:
            placing = (
                f"Grad-CAM at {layer.name} ({'x'.join(map(str, layer.shape))}): its receptive "
                "field is unknown, so the map is stretched over the input"
            )
        lines = [
            f"target class: {name} · predicted {classes[pred]} "
            f"({probs.probabilities[pred]:.1%}) · differentiated: {what}",
            placing,
        ]
        if colour:
            lines.append("saliency: per pixel the largest |d score / d pixel| over R, G and B")
        elif net.prep.channels > 1:
            lines.append(
                f"saliency: per pixel the largest |d score / d pixel| over the "
                f"{net.prep.channels} channels"
            )
        quantity = {"logit": "logit", "probability": "p", "log-probability": "log p"}[r.quantity]
        img = attribution_image(
            inp.image,
            r.saliency,
            r.cam,
            r.placed,
            f"what decides '{name}' for {inp.name}",
            lines,
            f"|d {quantity} / d pixel|",
            "Grad-CAM",
        )
        stem = f"attribution_{stem_of(inp)}_{r.target}"
        files[f"{stem}.png"] = rgb_png(img)  # overlays blend colours: no fixed palette
        files[f"{stem}.json"] = sidecar(
            net.meta,
            picture="attribution",
            input=inp.name,
            input_source=inp.source,
            preprocessing_notes=list(inp.notes),
            target=r.target,
            prediction=pred,
            differentiated=r.quantity,
            output=net.output,
            score=r.score,
            saliency="max over channels of |d score / d pixel|, pixel values on the [0, 1] scale",
            saliency_range=[0.0, float(r.saliency.max())],
            grad_cam_layer=layer.name,
            grad_cam_shape=list(r.cam.shape),
            grad_cam=np.round(r.cam, 8).tolist(),
            grad_cam_range=[0.0, float(r.cam.max())],
            grad_cam_alpha=np.round(r.alpha, 8).tolist(),
            grad_cam_placement="receptive field"
            if r.field_known
            else "stretched (each pixel sees the whole input)"
            if layer.field is not None
            else "stretched (field unknown)",
            grad_cam_field=r.field.to_dict(),
        )
    return finish(files, a.out, t0)
