"""facenet-pytorch's MTCNN face detector networks, with their shipped weights, for --model:

    convsee predict face.png --model examples/mtcnn.py:onet --preprocess examples/mtcnn.json
    convsee predict face.png --model examples/mtcnn.py:pnet --input-size 3,52,52 --mean 0.5 \
        --std 0.50196 --resize stretch --output 1 --labels examples/mtcnn-labels.txt

pnet (12x12 windows, fully convolutional: a face probability at every position), rnet (24x24)
and onet (48x48) return (box regression, [landmarks,] face probabilities): the probabilities
are output 1 of PNet and RNet, and 2 of ONet. They take RGB in facenet-pytorch's scaling,
(pixel - 127.5) / 128 on 0-255, which is mean 0.5 and std 128/255 = 0.50196 on convsee's [0, 1]
scale; class 0 is "no face", 1 "face".

facenet-pytorch installs with `pip install --no-deps facenet-pytorch` (its weights ship inside
the package). Its package __init__ imports torchvision for the detection helpers around the
networks, which convsee does not need: this file loads facenet_pytorch/models/mtcnn.py alone,
with those helpers stubbed out, and never imports torchvision.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

CLASSES = ["no face", "face"]
MEAN, STD = (0.5, 0.5, 0.5), (128 / 255,) * 3


def _mtcnn_module():
    """facenet_pytorch.models.mtcnn, imported without the package's __init__ (torchvision)."""
    name = "facenet_pytorch.models.mtcnn"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("facenet_pytorch")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facenet-pytorch is not installed: pip install --no-deps facenet-pytorch")
    root = Path(next(iter(spec.submodule_search_locations)))
    for pkg, sub in [
        ("facenet_pytorch", root),
        ("facenet_pytorch.models", root / "models"),
        ("facenet_pytorch.models.utils", root / "models" / "utils"),
    ]:
        if pkg not in sys.modules:
            m = types.ModuleType(pkg)
            m.__path__ = [str(sub)]
            sys.modules[pkg] = m
    helpers = "facenet_pytorch.models.utils.detect_face"
    if helpers not in sys.modules:  # detection helpers (torchvision): not used here
        stub = types.ModuleType(helpers)
        stub.detect_face = stub.extract_face = None
        sys.modules[helpers] = stub
    file_spec = importlib.util.spec_from_file_location(name, root / "models" / "mtcnn.py")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module
    file_spec.loader.exec_module(module)
    return module


def pnet():
    return _mtcnn_module().PNet().eval()


def rnet():
    return _mtcnn_module().RNet().eval()


def onet():
    return _mtcnn_module().ONet().eval()
