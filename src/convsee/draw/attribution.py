"""The attribution picture: the input, saliency and Grad-CAM, each with its colour scale.

Arrays in, a Pillow image out; nothing here runs a model. Every panel shows the input at its
own pixel grid (enlarged by a whole factor, or reduced smoothly when it is large); Grad-CAM is
shown twice: at the layer's own resolution and placed on the input.
"""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image, ImageDraw

from . import core  # core.colorbar_width, core.text_right: what _panel_row measures
from .core import BG, FG, MUTED, apply_cmap, colorbar, colormap, font, save_image, upscale

__all__ = [
    "attribution_image",
    "method_image",
    "attribution_figures",
    "stem_of",
    "overlay",
    "fit_panel",
    "nothing_speaks_for",
]

PANEL = 200  # px, the longer side of every panel
BAR_W = 84  # px, a colour bar with its numbers


def fit_panel(rgb: np.ndarray, size: int = PANEL, smooth: bool = True) -> Image.Image:
    """(h, w, 3) uint8 enlarged by a whole factor (sharp pixels) to about `size` px, or
    reduced to it (smoothly for pictures, nearest for maps when smooth=False)."""
    h, w = rgb.shape[:2]
    k = size // max(h, w)
    if k >= 1:
        return Image.fromarray(upscale(rgb, k))
    s = size / max(h, w)
    im = Image.fromarray(rgb)
    how = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), how)


def _rgb(image: np.ndarray) -> np.ndarray:
    a = np.round(np.clip(image, 0, 1) * 255).astype(np.float32)
    return np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a


def _over_gray(image: np.ndarray, coloured: np.ndarray, alpha: float) -> np.ndarray:
    """coloured (H, W, 3) at `alpha` opacity over the input in gray (a colour input by its
    luminance, so the colours stay readable)."""
    g = np.asarray(image, np.float32)
    if g.ndim == 3:
        g = g[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    h = coloured.astype(np.float32)
    return np.round(_rgb(g) * (1 - alpha) + h * alpha).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, lut, vmax: float, alpha: float = 0.6):
    """heat coloured on [0, vmax] at `alpha` opacity over the input in gray (a colour input
    by its luminance, so the heat colours stay readable)."""
    return _over_gray(image, apply_cmap(heat, 0, vmax or 1.0, lut), alpha)


def _panel_row(title, lines, panels, lut, footer: str) -> Image.Image:
    """The title, its lines, then the panels in a row, each (label, picture, bar): bar is
    (low, high, name) for a colour bar of lut after the panel, or None; footer at the foot.
    As wide as its content (panels, bars and their numbers, every line of text) + 20 px."""
    top = 96 + 18 * len(lines)
    x = 20
    xs = []
    right = 0  # the rightmost pixel drawn
    for label, pic, bar in panels:
        xs.append(x)
        right = max(right, x + pic.width, x + core.text_right(label, 12))
        if bar:
            bx = x + pic.width + 14
            right = max(
                right,
                bx + core.colorbar_width(bar[0], bar[1]),
                bx - 4 + core.text_right(bar[2], 11),
            )
        x += pic.width + 22 + (BAR_W if bar else 0)
    texts = [(title, 20), *((line, 13) for line in lines), (footer, 11)]
    right = max(right, *(20 + core.text_right(t, z) for t, z in texts))
    width = right + 20
    height = top + max(p.height for _, p, _ in panels) + 56
    img = Image.new("RGB", (width, height), BG)
    d = ImageDraw.Draw(img)
    d.text((20, 14), title, fill=FG, font=font(20))
    for i, line in enumerate(lines):
        d.text((20, 44 + 18 * i), line, fill=MUTED, font=font(13))
    for xx, (label, pic, bar) in zip(xs, panels, strict=True):
        d.text((xx, top - 8), label, fill=FG, font=font(12), anchor="ls")
        img.paste(pic, (xx, top))
        d.rectangle([xx - 1, top - 1, xx + pic.width, top + pic.height], outline=(200, 200, 205))
        if bar:
            vlo, vhi, name = bar
            bx = xx + pic.width + 14
            colorbar(d, img, (bx, top), pic.height, vlo, vhi, lut)
            d.text((bx - 4, top + pic.height + 16), name, fill=MUTED, font=font(11), anchor="ls")
    d.text((20, height - 22), footer, fill=MUTED, font=font(11))
    return img


def attribution_image(
    image: np.ndarray,
    sal: np.ndarray,
    cam: np.ndarray,
    placed: np.ndarray,
    title: str,
    lines: list[str],
    sal_label: str,
    cam_label: str,
) -> Image.Image:
    """Input | saliency, saliency over the input, its scale | Grad-CAM on the layer's grid,
    Grad-CAM over the input, its scale. image (H, W) or (H, W, 3) in [0, 1]; sal, placed
    (H, W) >= 0; cam (h, w) >= 0."""
    lut = colormap("inferno")
    smax = float(sal.max()) or 1.0
    cmax = float(cam.max()) or 1.0
    h, w = image.shape[:2]
    panels = [
        ("input", fit_panel(_rgb(image).astype(np.uint8)), None),
        ("saliency", fit_panel(apply_cmap(sal, 0, smax, lut), smooth=False), None),
        (
            "saliency over the input",
            fit_panel(overlay(image, sal, lut, smax)),
            (0.0, smax, sal_label),
        ),
        (
            f"Grad-CAM, its own {cam.shape[0]}x{cam.shape[1]} grid",
            fit_panel(apply_cmap(cam, 0, cmax, lut), smooth=False),
            None,
        ),
        (
            f"Grad-CAM placed on the {h}x{w} input",
            fit_panel(overlay(image, placed, lut, cmax)),
            (0.0, cmax, cam_label),
        ),
    ]
    return _panel_row(
        title,
        lines,
        panels,
        lut,
        "overlays: the colour scale at 60% opacity over the input in gray; "
        "each colour bar gives the range of the two panels before it",
    )


# -------------------------------------------------------------------------------------------
# One picture per input for any method (Network.attribution, `convsee attribution`)
# -------------------------------------------------------------------------------------------

METHOD_NAMES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
    "scorecam": "Score-CAM",
    "eigencam": "Eigen-CAM",
    "saliency": "saliency",
    "integrated-gradients": "integrated gradients",
    "occlusion": "occlusion",
}


def _signed_overlay(image, m, vmax, alpha=0.6):
    return _over_gray(image, apply_cmap(m, -vmax, vmax, colormap("RdBu_r")), alpha)


def method_image(
    image: np.ndarray,
    placed: np.ndarray,
    layer_map: np.ndarray | None,
    signed: bool,
    title: str,
    lines: list[str],
    label: str,
    method: str,
) -> Image.Image:
    """Input | the layer's own map (CAM methods) | the map over the input, with its colour
    scale. image (H, W) or (H, W, 3) in [0, 1]; placed (H, W); layer_map (h, w) or None;
    signed maps on a diverging scale symmetric about 0."""
    name = METHOD_NAMES.get(method, method)
    h, w = image.shape[:2]
    if signed:
        vmax = float(np.abs(placed).max()) or 1.0
        lut = colormap("RdBu_r")
        over = _signed_overlay(image, placed, vmax)
        lo = -vmax
    else:
        vmax = float(placed.max()) or 1.0
        lut = colormap("inferno")
        over = overlay(image, placed, lut, vmax)
        lo = 0.0
    panels = [("input", fit_panel(_rgb(image).astype(np.uint8)), None)]
    if layer_map is not None:
        lmax = float(layer_map.max()) or 1.0
        panels.append(
            (
                f"{name}, its own {layer_map.shape[0]}x{layer_map.shape[1]} grid",
                fit_panel(apply_cmap(layer_map, 0, lmax, lut), smooth=False),
                None,
            )
        )
    panels.append((f"{name} on the {h}x{w} input", fit_panel(over), (lo, vmax, label)))
    return _panel_row(
        title,
        lines,
        panels,
        lut,
        "overlay: the colour scale at 60% opacity over the input in gray",
    )


def stem_of(inp) -> str:
    """sample:3 -> sample_3, photo.jpg -> photo, test:12 -> test_12."""
    from pathlib import Path

    from .render import _safe

    name = inp.name
    if inp.source and "." in Path(name).name and not name.startswith(("test:", "train:")):
        name = Path(name).stem
    return _safe(name)


def _placing(res, layer) -> str:
    name = METHOD_NAMES.get(res.method, res.method)
    shape = "x".join(map(str, layer.shape)) if layer is not None else ""
    at = f"{name} at {res.layer} ({shape})"
    if res.placement == "field":
        f = res.field
        return (
            f"{at}; placement: field, each map pixel at the centre of its {f.size[0]}x{f.size[1]} "
            f"receptive field (first centre at {f.start[0]:g},{f.start[1]:g}, {f.stride[0]:g} px "
            "apart), bilinear in between"
        )
    why = ""
    if res.field_known is False and layer is not None:
        if layer.field is not None and layer.field.whole:
            why = " (each map pixel sees the whole input)"
        elif layer.kind != "map" or layer.field is None:
            why = " (its receptive field is unknown)"
    return f"{at}; placement: stretch, the map stretched over the input, bilinear{why}"


ROUND_OFF = 1e-6  # a drop or attribution this small is float round-off, not a part


def nothing_speaks_for(method: str, m: np.ndarray, quantity: str, cls: str) -> str:
    """The sentence said when a signed input attribution (occlusion, integrated gradients)
    has no positive part (nothing above ROUND_OFF), i.e. nothing speaks for the class: no
    patch lowers its score, no pixel raises it. '' otherwise, and for the other methods. The
    CLI's picture adds it to its lines (the map is still drawn signed); the page, which draws
    the positive part, shows it instead of an empty overlay."""
    m = np.asarray(m)
    if method not in ("occlusion", "integrated-gradients") or m.size == 0:
        return ""
    if float(m.max()) > ROUND_OFF:
        return ""
    q = quantity if quantity in ("probability", "log-probability") else "logit"
    if method == "occlusion":
        return f"no patch lowers the {q} of “{cls}”: every drop is <= 0"
    return f"no pixel raises the {q} of “{cls}”: every attribution is <= 0"


def attribution_figures(net, inputs, res, output_name=None) -> list:
    """One Figure per input (PNG + sidecar) for an Attributions of those inputs."""
    from .figure import Figure
    from .render import sidecar

    spec = net.spec
    layer = spec.layer(res.layer) if res.layer else None
    classes = None
    figs = []
    preds = net.predict(list(inputs))
    which = f"output '{output_name}'" if output_name is not None else "the output"
    for i, inp in enumerate(inputs):
        t = int(res.targets[i])
        p = preds[i]
        k = len(p.probabilities)
        classes = classes or (net.class_names(k) if k else [])
        tname = classes[t] if 0 <= t < len(classes) else str(t)
        what = {
            "logit": f"the logit of class '{tname}'",
            "probability": f"the probability of class '{tname}'",
            "log-probability": f"the log-probability of class '{tname}' ({which} is a log-softmax)",
            "custom": "a custom target function of the output",
        }[res.quantity]
        if res.position == "sum":
            what += ", summed over the output's positions"
        elif res.position is not None:
            what += f" at output position {tuple(res.position)}"
        pred = (
            f" · predicted {p.label} ({p.probabilities[p.prediction]:.1%})"
            if p.prediction is not None
            else ""
        )
        lines = [f"target: {tname if t >= 0 else 'custom'}{pred} · differentiated: {what}"]
        if res.layer:
            lines.append(_placing(res, layer))
        elif res.method == "saliency":
            lines.append("saliency: per pixel the largest |d score / d pixel| over the channels")
        elif res.method == "integrated-gradients":
            lines.append("integrated gradients: summed over the channels, signed (red +, blue -)")
        else:
            lines.append(
                "occlusion: score drop when a patch is set to the baseline, signed (red +, blue -)"
            )
        none = "" if t < 0 else nothing_speaks_for(res.method, res.maps[i], res.quantity, tname)
        lines += [none] if none else []
        if res.noise:
            lines.append(
                f"smoothed: mean over {res.noise} copies with Gaussian noise, std "
                f"{res.noise_sigma:g} on the [0, 1] pixel scale"
            )
        lines += list(res.notes)
        q = {"logit": "logit", "probability": "p", "log-probability": "log p"}.get(
            res.quantity, "f"
        )
        label = {
            "saliency": f"|d {q} / d pixel|",
            "integrated-gradients": f"{q} attribution",
            "occlusion": f"drop of {q}",
        }.get(res.method, METHOD_NAMES.get(res.method, res.method))
        img = method_image(
            inp.image,
            res.maps[i],
            None if res.layer_maps is None else res.layer_maps[i],
            res.signed,
            f"what decides '{tname}' for {inp.name}",
            lines,
            label,
            res.method,
        )
        # one file per input, target and method (Grad-CAM, the default, keeps the short name),
        # so two methods run into one folder never overwrite each other
        how = "" if res.method == "gradcam" else f"_{res.method}"
        stem = f"attribution_{stem_of(inp)}_{t if t >= 0 else 'custom'}{how}"
        extra = {}
        if res.layer_maps is not None:
            lm = res.layer_maps[i]
            extra = {
                "layer_map_shape": list(lm.shape),
                "layer_map": np.round(lm, 8).tolist(),
                "layer_map_range": [0.0, float(lm.max())],
                "channel_weights": None
                if res.weights is None
                else np.round(res.weights[i], 8).tolist(),
                "field": res.field.to_dict(),
            }
        m = res.maps[i]
        side = sidecar(
            net.provenance,
            picture="attribution",
            method=res.method,
            input=inp.name,
            input_source=inp.source,
            preprocessing_notes=list(inp.notes),
            target=t if t >= 0 else None,
            prediction=p.prediction,
            differentiated=res.quantity,
            position=list(res.position) if isinstance(res.position, tuple) else res.position,
            output=output_name,
            score=float(res.scores[i]),
            layer=res.layer,
            placement=res.placement,
            placement_note=lines[1] if res.layer else None,
            map_range=[float(m.min()), float(m.max())],
            noise_samples=res.noise,
            noise_sigma=res.noise_sigma,
            notes=list(res.notes) + ([none] if none else []),
            **extra,
        )
        buf = io.BytesIO()
        save_image(img, buf)  # overlays blend colours: no fixed palette
        figs.append(Figure(f"{stem}.png", buf.getvalue(), json.loads(side)))
    return figs
