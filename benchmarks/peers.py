"""The peer libraries convsee's attribution is compared with (tests) and timed against
(bench_attribution.py): captum, torchcam and pytorch-grad-cam, each used as its documentation
shows, returning raw maps at the layer's resolution (no normalisation, no resizing).

- captum (a test dependency): LayerGradCam, Saliency, IntegratedGradients, Occlusion,
  NoiseTunnel.
- torchcam (`pip install torchcam`; it imports without torchvision).
- pytorch-grad-cam (`pip install --no-deps grad-cam ttach`): its package imports cv2,
  torchvision and scikit-learn at import time, none of which is installed here, and uses them
  only for drawing, resizing, torchvision detection targets and KernelPCA-CAM. `grad_cam()`
  imports it with empty stand-ins for those three, removed from sys.modules right after (so
  nothing else sees a fake torchvision), and the maps are taken before its cv2 resize:
  `get_cam_image` on what its own hooks recorded, as `BaseCAM.compute_cam_per_layer` does.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import torch

__all__ = ["captum", "torchcam", "grad_cam", "grad_cam_map", "torchcam_map", "available"]

GRAD_CAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "scorecam": "ScoreCAM",
    "eigencam": "EigenCAM",
}
TORCHCAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMpp",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "scorecam": "ScoreCAM",
}


def captum():
    """captum.attr, or None."""
    try:
        return importlib.import_module("captum.attr")
    except ImportError:
        return None


def torchcam():
    """torchcam.methods, or None."""
    try:
        return importlib.import_module("torchcam.methods")
    except ImportError:
        return None


def _stub(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def grad_cam():
    """pytorch_grad_cam (with pytorch_grad_cam.utils.model_targets), or None."""
    if "pytorch_grad_cam" in sys.modules:
        return sys.modules["pytorch_grad_cam"]
    try:
        importlib.import_module("ttach")
    except ImportError:
        return None

    class _Unavailable:
        def __init__(self, *a, **k):
            raise RuntimeError("not installed here (a stand-in for pytorch-grad-cam's import)")

    stand_ins = {}
    for name in ("cv2", "torchvision", "sklearn"):
        try:
            importlib.import_module(name)
        except ImportError:
            stand_ins[name] = True
    subs = {
        "cv2": ["cv2"],
        "torchvision": [
            "torchvision",
            "torchvision.transforms",
            "torchvision.transforms.functional",
            "torchvision.ops",
        ],
        "sklearn": ["sklearn", "sklearn.decomposition"],
    }
    fakes = {}
    for top in stand_ins:
        for name in subs[top]:
            # any name a module asks for: a constant (cv2's, in default arguments) or a class
            # that refuses to be used
            fakes[name] = _stub(
                name, __path__=[], __getattr__=lambda n: 0 if n.isupper() else _Unavailable
            )
    sys.modules.update(fakes)
    try:
        gc = importlib.import_module("pytorch_grad_cam")
        importlib.import_module("pytorch_grad_cam.utils.model_targets")
    except ImportError as e:
        print(f"pytorch-grad-cam does not import: {e}", file=sys.stderr)
        return None
    finally:
        for name in fakes:
            sys.modules.pop(name, None)
    return gc


def available() -> dict:
    return {
        "captum": captum() is not None,
        "torchcam": torchcam() is not None,
        "grad-cam": grad_cam() is not None,
    }


def grad_cam_map(method: str, model, layer_module, x, targets, reshape_transform=None):
    """pytorch-grad-cam's CAM (N, h, w) of `method` before its min-max scaling and resize:
    its hooks, its backward pass and its get_cam_image, ReLU'd as it does."""
    gc = grad_cam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = getattr(gc, GRAD_CAM_CLASSES[method])
    cam = cls(model=model, target_layers=[layer_module], reshape_transform=reshape_transform)
    try:
        outputs = cam.activations_and_grads(x)
        tg = [ClassifierOutputTarget(int(t)) for t in targets]
        if cam.uses_gradients:
            model.zero_grad()
            loss = sum(t(o) for t, o in zip(tg, outputs, strict=True))
            loss.backward(retain_graph=True)
        acts = cam.activations_and_grads.activations[0].cpu().numpy()
        grads = cam.activations_and_grads.gradients[0].cpu().numpy() if cam.uses_gradients else None
        raw = cam.get_cam_image(x, layer_module, tg, acts, grads, False)
        return np.maximum(raw, 0)
    finally:
        cam.activations_and_grads.release()


def torchcam_map(method: str, model, layer_name: str, x, targets):
    """torchcam's CAM (N, h, w) of `method`, not normalised."""
    tc = torchcam()
    cls = getattr(tc, TORCHCAM_CLASSES[method])
    with cls(model, target_layer=layer_name) as extractor:
        if method == "scorecam":
            with torch.no_grad():
                out = model(x)
        else:
            out = model(x)
        cams = extractor([int(t) for t in targets], out, normalized=False)
    return cams[0].detach().cpu().numpy()
