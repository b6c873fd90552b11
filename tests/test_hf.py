"""Hugging Face models in one flag (issue 19): `--model hf:DIR`, `convsee.load("hf:DIR")` and
`convsee.wrap(hf_model, processor)`.

The folders are built here, offline (tests/hf_models.py: small configs, seeded weights,
save_pretrained, an image processor whose mean, std and sizes differ from ImageNet's). The
oracle is transformers itself: the image processor's pixel_values, the model's logits and its
output_hidden_states.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
skdata = pytest.importorskip("skimage.data")

import hf_models  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import convsee  # noqa: E402
from convsee.cli import main  # noqa: E402
from convsee.datasets.transforms import Preprocess, crop_resize_size, fit, imagenet  # noqa: E402
from convsee.errors import ConvseeError  # noqa: E402
from convsee.models import hf  # noqa: E402

KINDS = hf_models.KINDS
STAGES = {  # hidden_states[k] is the output of these modules (read from modeling_*.py)
    "resnet": ["resnet.embedder"] + [f"resnet.encoder.stages.{i}" for i in range(3)],
    "convnext": ["convnext.embeddings"] + [f"convnext.encoder.stages.{i}" for i in range(3)],
    "mobilenet_v2": [f"mobilenet_v2.layer.{i}" for i in range(16)],
}
PHOTOS = ["chelsea", "astronaut", "coffee", "rocket", "horse", "coins"]  # horse, coins: gray


def _photos() -> dict[str, np.ndarray]:
    """8 images as uint8 RGB: 6 skimage photos (2 gray ones replicated) and 2 synthetic."""
    out = {}
    for name in PHOTOS:
        a = np.asarray(getattr(skdata, name)())
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        out[name] = a[..., :3]
    rng = np.random.default_rng(5)
    out["noise"] = rng.integers(0, 256, (97, 53, 3), dtype=np.uint8)  # tall and small
    y, x = np.mgrid[0:70, 0:190]
    out["stripes"] = np.stack([(x * 9) % 256, (y * 5) % 256, ((x + y) * 3) % 256], 2).astype(
        np.uint8
    )
    return out


@pytest.fixture(scope="module")
def photos():
    return _photos()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, photos):
    d = tmp_path_factory.mktemp("photos")
    for name, a in photos.items():
        Image.fromarray(a).save(d / f"{name}.png")
    return d


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {k: hf_models.build(k, root / k, seed=i) for i, k in enumerate((*KINDS, "vit"))}


def _pixel_values(processor, a: np.ndarray) -> np.ndarray:
    return np.asarray(processor(images=Image.fromarray(a), return_tensors="np")["pixel_values"])[0]


# ---------------------------------------------------------------------------------------------
# sizes: truncated as transformers and torchvision compute them
# ---------------------------------------------------------------------------------------------


def test_chelsea_is_resized_to_384x256_not_385():
    a = skdata.chelsea()  # 451x300
    _, _, notes = fit(a, imagenet())
    assert notes == ["resized from 451x300 to 384x256, centre 224x224 cut out"]


def test_sizes_before_the_cut_are_transformers_sizes():
    """Every shorter-side rule against transformers' own get_resize_output_image_size (which
    replicates torchvision's Resize(int)), on 400 image shapes."""
    from transformers.image_transforms import get_resize_output_image_size

    rng = np.random.default_rng(0)
    for _ in range(400):
        ih, iw = (int(v) for v in rng.integers(30, 2000, 2))
        dummy = np.zeros((3, ih, iw), np.uint8)
        for short in (64, 224, 256, 232, 299):
            want_h, want_w = get_resize_output_image_size(
                dummy, short, default_to_square=False, input_data_format="channels_first"
            )
            p = Preprocess((3, 64, 64), (0.5,), (0.5,), "crop", resize_size=(short,))
            assert crop_resize_size(iw, ih, p) == (want_w, want_h), (iw, ih, short)
        for size, pct in ((224, 0.875), (224, 0.9), (64, 0.8), (288, 0.95)):
            want_h, want_w = get_resize_output_image_size(  # ConvNext's and timm's int(S / pct)
                dummy, int(size / pct), default_to_square=False, input_data_format="channels_first"
            )
            p = Preprocess((3, size, size), (0.5,), (0.5,), "crop", pct)
            assert crop_resize_size(iw, ih, p) == (want_w, want_h), (iw, ih, size, pct)


def test_resize_size_is_checked():
    with pytest.raises(ConvseeError, match="smaller than the input size 64x64"):
        Preprocess((3, 64, 64), (0.5,), (0.5,), "crop", resize_size=(60,))
    with pytest.raises(ConvseeError, match="resize_size must be S or H,W"):
        Preprocess((3, 64, 64), (0.5,), (0.5,), "crop", resize_size=(70, 70, 70))
    p = Preprocess((3, 64, 64), (0.5,), (0.5,), "crop").merged({"resize_size": "72,80"})
    assert p.resize_size == (72, 80) and "72x80 first" in p.describe()
    assert "resize_size" not in imagenet().to_dict()  # the default leaves sidecars as they were


def test_the_digit_path_is_unchanged():
    from convsee.datasets.digits import preprocess

    rng = np.random.default_rng(3)
    img = np.zeros((90, 60), np.uint8)
    img[20:70, 25:35] = 255  # a stroke
    img = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
    show, _, _ = fit(img, Preprocess())
    np.testing.assert_array_equal(show, preprocess(img))


# ---------------------------------------------------------------------------------------------
# the image processor -> Preprocess: convsee's input is the processor's pixel_values
# ---------------------------------------------------------------------------------------------

PROCESSORS = {
    "convnext_crop_pct": ("ConvNextImageProcessor", dict(size={"shortest_edge": 64}, crop_pct=0.8)),
    "convnext_warp_384": ("ConvNextImageProcessor", dict(size={"shortest_edge": 384}, resample=2)),
    "mobilenet_v2": (
        "MobileNetV2ImageProcessor",
        dict(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}),
    ),
    "vit_stretch": ("ViTImageProcessor", dict(size={"height": 40, "width": 56}, resample=3)),
    "deit_stretch_then_crop": (
        "DeiTImageProcessor",
        dict(size={"height": 72, "width": 80}, crop_size={"height": 64, "width": 64}),
    ),
    "bit_bicubic": (
        "BitImageProcessor",
        dict(size={"shortest_edge": 70}, crop_size={"height": 48, "width": 64}),
    ),
    "efficientnet_offset_top": (
        "EfficientNetImageProcessor",
        dict(
            size={"height": 60, "width": 60},
            rescale_offset=True,
            include_top=True,
            resample=0,
            rescale_factor=1 / 127.5,
        ),
    ),
    "no_normalize": (
        "ViTImageProcessor",
        dict(size={"height": 32, "width": 32}, do_normalize=False, resample=4),
    ),
    "no_rescale": (
        "ViTImageProcessor",
        dict(
            size={"height": 32, "width": 32},
            do_rescale=False,
            image_mean=[100.0, 120.0, 110.0],
            image_std=[60.0, 50.0, 70.0],
            resample=5,
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(PROCESSORS))
def test_input_equals_the_processors_pixel_values(case, photos):
    name, kw = PROCESSORS[case]
    kw = {"image_mean": [0.55, 0.45, 0.35], "image_std": [0.22, 0.28, 0.33], **kw}
    proc = hf_models.processor(name, **kw)
    prep, frm = hf.processor_preprocess(proc)
    for key, a in photos.items():
        want = _pixel_values(proc, a)
        got = fit(Image.fromarray(a), prep)[1]
        assert got.shape == want.shape, (case, key)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{case} {key}")
    assert set(frm) >= {"input_size", "mean", "std", "interpolation", "rescale"}


def test_a_no_op_resize_is_the_same_tensor():
    """An image already at the input size, stretch: only rescale and normalisation apply."""
    proc = hf_models.processor(
        "ViTImageProcessor",
        size={"height": 48, "width": 40},
        image_mean=[0.3, 0.6, 0.5],
        image_std=[0.2, 0.4, 0.3],
    )
    prep, _ = hf.processor_preprocess(proc)
    a = np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    want = _pixel_values(proc, a)
    _, got, notes = fit(a, prep)
    assert notes == []  # nothing resized
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    manual = (a.transpose(2, 0, 1) / 255.0 - np.array([0.3, 0.6, 0.5])[:, None, None]) / np.array(
        [0.2, 0.4, 0.3]
    )[:, None, None]
    np.testing.assert_allclose(got, manual, atol=1e-5, rtol=0)


def test_the_torch_resize_difference_is_as_the_sidecar_says(photos):
    """transformers' torchvision backend resizes with torch's antialiased interpolation (not
    installable here: measured with F.interpolate, as torchvision calls it for tensors)."""
    import torch.nn.functional as F

    worst = {"bilinear": 0.0, "bicubic": 0.0}
    means = []
    for mode, pil in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
        for a in photos.values():
            h, w = a.shape[:2]
            for short in (64, 256):
                nw, nh = crop_resize_size(
                    w, h, Preprocess((3, 64, 64), (0.5,), (0.5,), "crop", resize_size=(short,))
                )
                mine = np.asarray(Image.fromarray(a).resize((nw, nh), pil), np.float32)
                t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()
                theirs = F.interpolate(t, size=(nh, nw), mode=mode, antialias=True)
                theirs = theirs.round().clamp(0, 255)[0].numpy().transpose(1, 2, 0)
                d = np.abs(mine - theirs)
                worst[mode] = max(worst[mode], float(d.max()))
                means.append(float(d.mean()))
    for mode, bound in hf.TORCH_LEVELS.items():
        assert 0 < worst[mode] <= bound, (mode, worst)  # they differ, and by no more than said
    assert max(means) < hf.TORCH_MEAN_LEVEL
    for mode, bound in hf.TORCH_LEVELS.items():
        assert f"{bound} " in hf.TORCH_RESIZE or f"{bound} of" in hf.TORCH_RESIZE, mode


def test_where_each_value_came_from(tmp_path):
    """A key the file leaves out is the processor class's default, and said so."""
    proc = hf_models.processor(
        "ConvNextImageProcessor",
        size={"shortest_edge": 96},
        image_mean=[0.4, 0.4, 0.4],
        image_std=[0.3, 0.3, 0.3],
    )
    proc.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "preprocessor_config.json").read_text())
    del cfg["crop_pct"]
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(cfg))
    loaded = transformers.AutoImageProcessor.from_pretrained(tmp_path)
    prep, frm = hf.processor_preprocess(loaded, 3, set(cfg))
    assert prep.resize_size == (int(96 / (224 / 256)),) == (109,)
    assert frm["resize_size"].startswith("preprocessor_config.json: size.shortest_edge 96")
    assert "ConvNextImageProcessor default crop_pct 0.875" in frm["resize_size"]
    assert frm["mean"] == "preprocessor_config.json: image_mean [0.4, 0.4, 0.4]"
    assert frm["interpolation"] == "preprocessor_config.json: resample 3 (bicubic)"


def test_processors_convsee_cannot_follow_are_refused():
    base = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    variable = hf_models.processor(
        "ViTImageProcessor", size={"shortest_edge": 64, "longest_edge": 96}, **base
    )
    with pytest.raises(ConvseeError, match="depends on the image"):
        hf.processor_preprocess(variable)
    flip = hf_models.processor("ViTImageProcessor", size={"height": 32, "width": 32}, **base)
    flip.do_flip_channel_order = True  # MobileViT's processor does this
    with pytest.raises(ConvseeError, match="flips the channels"):
        hf.processor_preprocess(flip)
    still = hf_models.processor("ViTImageProcessor", do_resize=False, **base)
    with pytest.raises(ConvseeError, match="does not resize"):
        hf.processor_preprocess(still)


# ---------------------------------------------------------------------------------------------
# the models: predictions, stages, names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_predictions_equal_the_transformers_pipeline(kind, folders, photos):
    d = folders[kind]
    net = convsee.load(f"hf:{d}")
    model = transformers.AutoModelForImageClassification.from_pretrained(d).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(d)
    names = list(photos)
    preds = net.predict([Image.fromarray(photos[n]) for n in names])
    with torch.no_grad():
        pv = proc(images=[Image.fromarray(photos[n]) for n in names], return_tensors="pt")
        logits = model(**pv).logits
    want = torch.softmax(logits, 1).numpy()
    got = np.array([p.probabilities for p in preds])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    labels = [model.config.id2label[int(i)] for i in logits.argmax(1)]
    assert [p.label for p in preds] == labels
    assert len(names) >= 8 and len(set(labels)) >= 2  # the scores depend on the image
    assert net.classes == hf_models.CLASSES


@pytest.mark.parametrize("kind", KINDS)
def test_every_stage_equals_output_hidden_states(kind, folders, photos):
    d = folders[kind]
    net = convsee.load(f"hf:{d}")
    found = hf.stages(net)
    assert [name for _, name, _ in found] == STAGES[kind]
    model = transformers.AutoModelForImageClassification.from_pretrained(d).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(d)
    imgs = [Image.fromarray(photos[n]) for n in ("chelsea", "stripes", "noise")]
    acts, _ = net.activations(imgs, STAGES[kind])
    with torch.no_grad():
        out = model(**proc(images=imgs, return_tensors="pt"), output_hidden_states=True)
    assert len(out.hidden_states) == len(STAGES[kind])
    for k, name in enumerate(STAGES[kind]):
        want = out.hidden_states[k].numpy()
        assert acts[name].shape == want.shape, name
        np.testing.assert_allclose(acts[name], want, atol=1e-5, rtol=0, err_msg=name)


def test_layer_names_are_named_modules(folders):
    net = convsee.load(f"hf:{folders['resnet']}")
    names = set(net.spec.names())
    assert "resnet.encoder.stages.0.layers.0.shortcut" in names
    assert "resnet.encoder.stages.1.layers.0.shortcut.convolution" in names
    model = net.torch_model()
    modules = dict(model.named_modules())
    assert all(x.module in modules for x in net.spec.layers)
    assert [o.name for o in net.spec.outputs] == ["logits"]  # ModelOutput: named outputs


def test_hidden_states_as_outputs_when_asked(folders, photos):
    net = convsee.load(f"hf:{folders['resnet']}", output="hidden_states.3")
    names = [o.name for o in net.spec.outputs]
    assert names[0] == "logits" and "hidden_states.3" in names
    [p] = net.predict([Image.fromarray(photos["chelsea"])])
    assert p.prediction is None  # a map: not class scores
    with pytest.raises(ConvseeError, match="its outputs: logits, hidden_states.0"):
        convsee.load(f"hf:{folders['resnet']}", output="hidden_states.9")


def test_wrap_reads_id2label_and_the_processor(folders, photos):
    d = folders["convnext"]
    model = transformers.AutoModelForImageClassification.from_pretrained(d)
    proc = transformers.AutoImageProcessor.from_pretrained(d)
    bare = convsee.wrap(model)  # no processor: class names still, the preprocessing assumed
    assert bare.classes == hf_models.CLASSES
    assert any("no image processor was given" in n for n in bare.notes)
    net = convsee.wrap(model, proc)
    loaded = convsee.load(f"hf:{d}")
    assert net.prep == loaded.prep and net.notes == []
    assert net.provenance.preprocess_from["mean"].startswith("the image processor: image_mean")
    img = Image.fromarray(photos["rocket"])
    [a], [b] = net.predict([img]), loaded.predict([img])
    assert a.label == b.label and np.allclose(a.probabilities, b.probabilities, atol=1e-6)
    assert repr(a).startswith("Prediction(") and a.label in hf_models.CLASSES


# ---------------------------------------------------------------------------------------------
# every command with --model hf:DIR alone
# ---------------------------------------------------------------------------------------------


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", KINDS)
def test_every_command_takes_hf_dir_alone(kind, folders, photo_dir, photos, tmp_path, capsys):
    from starlette.testclient import TestClient

    from convsee.cli import build_parser
    from convsee.cli.options import network
    from convsee.web.server import create_app

    model = f"hf:{folders[kind]}"
    code, out, err = _run(capsys, "layers", "--model", model)
    assert code == 0, err
    assert "preprocessing, where each value came from:" in out
    assert "preprocessor_config.json: image_mean" in out and "config.json: id2label" in out
    assert "Stages (the model's output_hidden_states" in out
    for k, name in enumerate(STAGES[kind]):
        assert f"hidden_states.{k:<3} {name}" in out

    files = [photo_dir / f"{n}.png" for n in ("chelsea", "coffee", "stripes")]
    code, out, err = _run(capsys, "predict", "--model", model, "--json", *files)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    direct = convsee.load(model).predict([Image.open(f) for f in files])
    assert [r["class"] for r in rows] == [p.label for p in direct]
    assert all(r["class"] in hf_models.CLASSES for r in rows)

    stage = STAGES[kind][-1]
    code, _, err = _run(
        capsys, "render", "--model", model, files[0], "--layers", stage, "--out", tmp_path / "r"
    )
    assert code == 0, err
    side = json.loads((tmp_path / "r" / stage / "chelsea.json").read_text())
    assert side["preprocess_from"]["std"].startswith("preprocessor_config.json: image_std")
    assert "Pillow" in side["preprocess_from"]["resize_filter"]
    assert side["model"] == model

    code, _, err = _run(capsys, "attribution", "--model", model, files[0], "--out", tmp_path / "a")
    assert code == 0, err
    [pic] = sorted((tmp_path / "a").glob("attribution_*.json"))
    side = json.loads(pic.read_text())
    assert side["preprocess_from"]["classes"] == "config.json: id2label (6 names)"
    assert side["layer"] in convsee.load(model).spec.names()

    code, _, err = _run(
        capsys, "exemplars", "--model", model, "--data", photo_dir, "--out", tmp_path / "e"
    )
    assert code == 0, err
    assert len(list((tmp_path / "e").glob("exemplars_*.png"))) == 2

    a = build_parser().parse_args(["serve", "--model", model, "--data", str(photo_dir)])
    net = network(a)
    with TestClient(create_app(net, a.data, a.dataset), base_url="http://127.0.0.1:8000") as c:
        info = c.get("/api/info").json()
        assert info["classes"] == hf_models.CLASSES
        assert info["preprocess_from"]["mean"].startswith("preprocessor_config.json")
        assert info["inputs"]["random"]["available"] is True  # --data's images
        buf = Image.fromarray(photos["coffee"])
        import base64
        import io

        b = io.BytesIO()
        buf.save(b, "PNG")
        url = "data:image/png;base64," + base64.b64encode(b.getvalue()).decode()
        r = c.post("/api/activations", json={"png": url, "layers": [stage]})
        assert r.status_code == 200, r.text[:300]
        j = r.json()
    [want] = net.predict([Image.fromarray(photos["coffee"])])
    np.testing.assert_allclose(j["probabilities"], want.probabilities, atol=1e-4)
    assert j["layers"][stage]["shape"] == list(net.spec.layer(stage).shape)


# ---------------------------------------------------------------------------------------------
# what is not an image classifier, and bad inputs: one line, exit 2
# ---------------------------------------------------------------------------------------------


def _one_line_error(capsys, *argv, notes: bool = False) -> str:
    """The one line of a refusal (notes: the model's load notes may come first)."""
    code, out, err = _run(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    if notes:
        lines = [x for x in lines if not x.startswith("convsee: note: ")]
    assert len(lines) == 1 and lines[0].startswith(f"convsee {argv[0]}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_without_transformers_hf_says_what_to_install(folders, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` fails
    with pytest.raises(ConvseeError, match=r"pip install 'convsee\[hf\]'"):
        convsee.load(f"hf:{folders['resnet']}")
    line = _one_line_error(capsys, "layers", "--model", f"hf:{folders['resnet']}")
    assert "transformers" in line and "pip install 'convsee[hf]'" in line


def test_bad_folders_are_one_line(folders, tmp_path, capsys):
    a_file = tmp_path / "model.safetensors"
    a_file.write_bytes(b"x")
    assert "is a file" in _one_line_error(capsys, "predict", "--model", f"hf:{a_file}")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has no config.json" in _one_line_error(capsys, "layers", "--model", f"hf:{empty}")
    line = _one_line_error(capsys, "layers", "--model", f"hf:{tmp_path / 'nope'}")
    assert "no such folder" in line
    assert "needs the model's folder" in _one_line_error(capsys, "layers", "--model", "hf:")
    line = _one_line_error(
        capsys, "layers", "--model", f"hf:{folders['resnet']}", "--checkpoint", a_file
    )
    assert "holds its weights" in line


def test_train_says_an_hf_model_is_not_built_from_a_class(folders, tmp_path, capsys):
    line = _one_line_error(
        capsys,
        "train",
        "--model",
        f"hf:{folders['resnet']}",
        "--epochs",
        "1",
        "--out",
        tmp_path / "w.safetensors",
    )
    assert "cannot be trained or rebuilt here" in line
    assert not (tmp_path / "w.safetensors").exists()


def test_a_text_model_says_no_view_applies(tmp_path, capsys):
    d = hf_models.build("bert", tmp_path / "bert")
    line = _one_line_error(capsys, "layers", "--model", f"hf:{d}")
    assert "bert model" in line and "not one that takes images" in line
    assert "none of convsee's views apply" in line


def test_a_vit_says_which_views_apply(folders, photo_dir, tmp_path, capsys):
    model = f"hf:{folders['vit']}"
    code, out, err = _run(capsys, "predict", "--model", model, photo_dir / "chelsea.png")
    assert code == 0, err
    [note] = [x for x in err.splitlines() if "tokens" in x]
    assert "predict, attribution and layers apply" in note
    assert "vit.embeddings.patch_embeddings.projection" in note  # the one layer with maps
    line = _one_line_error(
        capsys,
        "render",
        "--model",
        model,
        photo_dir / "chelsea.png",
        "--layers",
        "vit.layers.0",
        "--out",
        tmp_path / "r",
        notes=True,
    )
    assert "not maps" in line
    code, _, err = _run(
        capsys, "render", "--model", model, photo_dir / "chelsea.png", "--out", tmp_path / "r2"
    )
    assert code == 0, err  # the patch embedding's maps
    assert (tmp_path / "r2" / "vit.embeddings.patch_embeddings.projection").is_dir()


def test_a_processor_without_mean_or_std(folders, tmp_path, capsys):
    import shutil

    d = tmp_path / "nomean"
    shutil.copytree(folders["mobilenet_v2"], d)
    cfg = json.loads((d / "preprocessor_config.json").read_text())
    del cfg["image_std"]
    (d / "preprocessor_config.json").write_text(json.dumps(cfg))
    line = _one_line_error(capsys, "layers", "--model", f"hf:{d}")
    assert "gives no image_std" in line and "give mean and std" in line
    code, out, err = _run(
        capsys, "layers", "--model", f"hf:{d}", "--mean", "0.5,0.5,0.5", "--std", "0.25"
    )
    assert code == 0, err
    assert "std            given explicitly" in out


def test_weights_that_do_not_fit(folders, tmp_path, capsys):
    import shutil

    d = tmp_path / "bent"
    shutil.copytree(folders["resnet"], d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["hidden_sizes"] = [8, 16, 32]  # the last stage's weights are 24 wide
    (d / "config.json").write_text(json.dumps(cfg))
    line = _one_line_error(capsys, "layers", "--model", f"hf:{d}")
    assert "the weights do not fit ResNetForImageClassification" in line
    assert "[24, 16, 3, 3] in the file, [32, 16, 3, 3] in the model" in line


def test_a_hub_id_that_cannot_be_fetched_is_one_line(monkeypatch, tmp_path, capsys):
    """Offline (as every test is): transformers is asked, says no, and that is one line."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    line = _one_line_error(capsys, "layers", "--model", "hf:nobody-here/no-such-model")
    assert "no such folder here, and the hub did not give a model of that ID" in line
