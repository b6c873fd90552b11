"""Part 4 views on small known cases, checked against first principles."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from convsee.cli import main
from convsee.datasets.idx import MEAN, STD
from convsee.datasets.inputs import samples
from convsee.errors import ConvseeError
from convsee.models.checkpoint import load_checkpoint
from convsee.models.lenet import LeNet5
from convsee.run.animate import conv_steps, plan, pool_steps
from convsee.run.attribution import grad_cam, saliency
from convsee.run.evolution import snapshot_maps, snapshot_steps
from convsee.run.exemplars import top_exemplars
from convsee.run.optimize import OptimizeConfig, maximize, target_value
from convsee.run.sweep import channel_similarity, perturb
from convsee.spec import describe


def test_hand_made_kernel_finds_its_planted_patch():
    torch.manual_seed(0)
    net = LeNet5()
    pattern = torch.tensor(
        [[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]],
        dtype=torch.float32,
    )
    with torch.no_grad():
        net.conv1.weight[0, 0] = pattern * 2 - 1  # +1 on the stripes, -1 between them
        net.conv1.bias[0] = 0
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(50, 28, 28, generator=g) * 60).to(torch.uint8)  # dim noise
    images[17] = 0
    images[17, 9:14, 4:9] = (pattern * 255).to(torch.uint8)  # the exact pattern, full contrast
    ex = top_exemplars(net, images, describe(net, (1, 28, 28)).layer("conv1"), k=3)
    assert ex.indices[0, 0] == 17
    assert tuple(ex.positions[0, 0]) == (9, 4)
    np.testing.assert_allclose(ex.patches[0, 0], pattern.numpy(), atol=1e-6)
    assert ex.values[0, 0] >= ex.values[0, 1] >= ex.values[0, 2]
    # the value is the conv1 output at that spot, from first principles
    x = (images[17].float() / 255 - MEAN) / STD
    ref = F.conv2d(x[None, None], net.conv1.weight, net.conv1.bias)[0, 0, 9, 4]
    assert abs(ex.values[0, 0] - ref.item()) < 1e-4


def test_conv2_exemplars_are_14x14_receptive_fields():
    model, _ = load_checkpoint()
    imgs = torch.from_numpy(np.stack([(s.image * 255).astype(np.uint8) for s in samples()]))
    ex = top_exemplars(model, imgs, describe(model, (1, 28, 28)).layer("conv2"), k=2)
    assert ex.patches.shape == (16, 2, 14, 14)
    r, c = ex.positions[5, 0]
    np.testing.assert_allclose(
        ex.patches[5, 0],
        imgs[ex.indices[5, 0], 2 * r : 2 * r + 14, 2 * c : 2 * c + 14] / 255,
        atol=1e-6,
    )


def test_optimized_input_beats_random_inputs():
    model, _ = load_checkpoint()
    images, values = maximize(model, "conv2", 16, OptimizeConfig(steps=100))
    assert images.shape == (16, 28, 28) and 0 <= images.min() and images.max() <= 1
    g = torch.Generator().manual_seed(5)
    rand = torch.rand(200, 16, 1, 28, 28, generator=g)
    with torch.no_grad():
        base = torch.stack([target_value(model, (r - MEAN) / STD, "conv2") for r in rand])
    # every channel: far above the mean of random inputs, and above the best of 200
    spread = base.std(0).numpy()
    assert (values > base.mean(0).numpy() + 5 * spread).all()
    assert (values > base.max(0).values.numpy()).all()
    assert not model.training and all(not m._forward_hooks for m in model.modules())


def test_animation_last_frame_is_conv2d_and_maxpool():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 12, 12)).astype(np.float32)
    w = rng.normal(size=(6, 5, 5)).astype(np.float32)
    _, products, out = conv_steps(x, w, 0.3)
    ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w)[None], torch.tensor([0.3]))
    np.testing.assert_allclose(out, ref[0, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(products[2, 3].sum() + 0.3, out[2, 3], atol=1e-5)
    frames = plan(_, out)
    assert frames[-1].filled.all() and all(f.filled[f.pos] for f in frames)
    assert all((a.filled <= b.filled).all() for a, b in zip(frames[:-1], frames[1:], strict=True))
    m = np.abs(x[0])
    _, pooled = pool_steps(m)
    np.testing.assert_array_equal(pooled, F.max_pool2d(torch.from_numpy(m)[None], 2)[0].numpy())


def manual_grad_cam(net, image, target):
    """Grad-CAM by hand: forward in NumPy, then the chain rule written out."""
    W = {k: v.detach().numpy().astype(np.float64) for k, v in net.state_dict().items()}
    x = (image - MEAN) / STD
    c1 = F.conv2d(
        torch.from_numpy(x)[None, None].double(),
        torch.from_numpy(W["conv1.weight"]),
        torch.from_numpy(W["conv1.bias"]),
    )
    p1 = F.max_pool2d(c1.clamp(min=0), 2)
    a = F.conv2d(p1, torch.from_numpy(W["conv2.weight"]), torch.from_numpy(W["conv2.bias"]))
    a = a[0].numpy()  # (16, 8, 8): conv2's output
    r = np.maximum(a, 0)
    win = r.reshape(16, 4, 2, 4, 2)
    p = win.max(axis=(2, 4))
    z1 = W["fc1.weight"] @ p.reshape(-1) + W["fc1.bias"]
    z2 = W["fc2.weight"] @ np.maximum(z1, 0) + W["fc2.bias"]
    dh2 = W["fc3.weight"][target]
    dz2 = dh2 * (z2 > 0)
    dz1 = (W["fc2.weight"].T @ dz2) * (z1 > 0)
    dp = (W["fc1.weight"].T @ dz1).reshape(16, 4, 4)
    # route each pooled gradient to the (first) maximum of its 2x2 window, then through ReLU
    dr = np.zeros_like(r)
    for c in range(16):
        for i in range(4):
            for j in range(4):
                w2 = r[c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
                u, v = np.unravel_index(np.argmax(w2), (2, 2))
                dr[c, 2 * i + u, 2 * j + v] += dp[c, i, j]
    da = dr * (a > 0)
    alpha = da.mean(axis=(1, 2))
    return np.maximum((alpha[:, None, None] * a).sum(0), 0), alpha


def test_grad_cam_matches_hand_computation():
    model, _ = load_checkpoint()
    for s in samples()[:4]:
        for target in (s.label, (s.label + 3) % 10):
            cam, big, alpha = grad_cam(model, s.image, target)
            ref_cam, ref_alpha = manual_grad_cam(model, s.image, target)
            np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-3, atol=1e-5)
            np.testing.assert_allclose(cam, ref_cam, rtol=1e-3, atol=1e-4)
            assert big.shape == (28, 28) and big.min() >= 0


def test_saliency_is_the_input_gradient():
    model, _ = load_checkpoint()
    img = samples()[2].image
    sal = saliency(model, img, 2)
    eps, (r, c) = 1e-2, np.unravel_index(np.argmax(sal), sal.shape)
    up, down = img.copy(), img.copy()
    up[r, c] += eps
    down[r, c] -= eps
    with torch.no_grad():
        f = lambda im: model((torch.from_numpy(im)[None, None] - MEAN) / STD)[0, 2].item()  # noqa: E731
    assert abs(abs(f(up) - f(down)) / (2 * eps) - sal[r, c]) < 0.05 * sal[r, c] + 1e-3


def test_sweep_perturbations():
    img = samples()[4].image
    shifted, labels = perturb(img, "shift")
    mid = len(shifted) // 2
    np.testing.assert_array_equal(shifted[mid], img)  # shift 0 in the middle
    np.testing.assert_array_equal(shifted[-1][:, 6:], img[:, :22])  # +6 px to the right
    for kind in ("blur", "noise", "occlude"):
        frames, labels = perturb(img, kind)
        np.testing.assert_allclose(frames[0], img, atol=1e-6)  # frame 0: unperturbed
        assert len(frames) == len(labels) == (17 if kind == "occlude" else 13)
    maps = np.stack([np.ones((2, 3, 3)), -np.ones((2, 3, 3))])
    np.testing.assert_allclose(channel_similarity(maps, 0), [[1, 1], [-1, -1]])
    with pytest.raises(ConvseeError, match="unknown sweep kind"):
        perturb(img, "melt")


def test_snapshots_recorded_in_training(tmp_path, mnist_dir):
    from convsee.datasets.idx import Split, load_mnist
    from convsee.run.train import TrainConfig, train

    tr, te = load_mnist(mnist_dir)
    splits = (
        Split(tr.images[:3000], tr.labels[:3000], {}),
        Split(te.images[:500], te.labels[:500], {}),
    )
    out = tmp_path / "s.safetensors"
    train(TrainConfig(epochs=2, seed=1), out=out, splits=splits, progress=False, snapshots=5)
    z = np.load(out.with_suffix(".snapshots.npz"))
    total = 2 * int(np.ceil(3000 / 128))
    assert z["step"].tolist() == snapshot_steps(5, total) and z["step"][0] == 0
    assert z["conv2.weight"].shape == (5, 16, 6, 5, 5)
    assert z["accuracy"][-1] > z["accuracy"][0]
    model, _ = load_checkpoint(out)
    np.testing.assert_array_equal(z["conv1.weight"][-1], model.conv1.weight.detach().numpy())
    x0 = (samples()[0].image - MEAN) / STD
    c1, c2 = snapshot_maps({k: z[k] for k in z.files}, x0[None])
    x = (torch.from_numpy(samples()[0].image)[None, None] - MEAN) / STD
    ref = F.conv2d(x, model.conv1.weight, model.conv1.bias)[0].detach().numpy()
    np.testing.assert_allclose(c1[-1], ref, atol=1e-4)
    assert main(["evolution", str(out), "--out", str(tmp_path / "ev")]) == 0
    assert Image.open(tmp_path / "ev" / "evolution_kernels.gif").n_frames == 5


@pytest.mark.parametrize(
    "argv, files",
    [
        (["exemplars", "-k", "4"], ["exemplars_conv1.png", "exemplars_conv2.png"]),
        (
            ["optimize", "--layers", "conv1,fc3", "--steps", "30"],
            ["optimize_conv1.png", "optimize_fc3.png"],
        ),
        (["animate"], ["animate_conv1_ch2.gif", "animate_conv1_ch2_frames/000.png"]),
        (["animate", "--layer", "pool2", "--channel", "5"], ["animate_pool2_ch5.gif"]),
        (["evolution"], ["evolution_kernels.gif", "evolution_conv1.gif", "evolution_conv2.gif"]),
        (["sweep", "--kind", "rotate", "--layer", "conv2"], ["sweep_rotate_conv2.gif"]),
        (
            ["sweep"],
            [f"sweep_{k}_conv1.gif" for k in ("blur", "shift", "rotate", "noise", "occlude")],
        ),
        (["attribution", "sample:8", "--target", "3"], ["attribution_sample_8_3.png"]),
    ],
)
def test_views_run_on_defaults(tmp_path, monkeypatch, mnist_dir, argv, files):
    monkeypatch.setenv("CONVSEE_DATA", str(mnist_dir))
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 0
    for f in files:
        Image.open(out / f).load()
    sidecars = list(out.glob("*.json"))
    assert sidecars and all(json.loads(p.read_text())["checkpoint_sha256"] for p in sidecars)


def test_final_animation_state_matches_conv2d(tmp_path):
    assert (
        main(["animate", "sample:5", "--layer", "conv1", "--channel", "3", "--out", str(tmp_path)])
        == 0
    )
    side = json.loads((tmp_path / "animate_conv1_ch3.json").read_text())
    model, _ = load_checkpoint()
    x = (torch.from_numpy(samples()[5].image)[None, None] - MEAN) / STD
    ref = F.conv2d(x, model.conv1.weight, model.conv1.bias)[0, 3].detach().numpy()
    np.testing.assert_allclose(np.array(side["final_map"]), ref, atol=1e-4)


@pytest.mark.parametrize("bias", [True, False])
def test_the_animation_headline_adds_a_bias_only_when_the_layer_has_one(bias):
    """'sum of 9 products S + bias B = V', or 'sum of 9 products S = V (no bias)' (it said
    '+ bias +0.000' for a bias-free conv, as a Hugging Face ResNet's), checked against torch."""
    import convsee

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, bias=bias), torch.nn.Flatten(), torch.nn.Linear(2 * 26 * 26, 3)
    ).eval()
    net = convsee.wrap(model, input_size=(1, 28, 28), mean=(0.0,), std=(1.0,), resize="none")
    [gif] = net.animate("sample:3", layer="0", channel=1)
    x = torch.from_numpy(samples()[3].image)[None, None]
    with torch.no_grad():
        sums, outs = F.conv2d(x, model[0].weight)[0, 1], model[0](x)[0, 1]
    assert gif.sidecar["shown"]
    for s in gif.sidecar["shown"]:
        r, c = s["position"]
        total, v = float(sums[r, c]), float(outs[r, c])
        head = f"output ({r}, {c}) = sum of 9 products {total:+.3f}"
        if bias:
            head += f" + bias {float(model[0].bias[1].detach()):+.3f} = {v:+.3f}"
        else:
            head += f" = {v:+.3f} (no bias)"
        assert s["headline"] == head
        assert ("+ bias" in s["caption"]) == (bias and s["why"] == "empty")


def test_the_animation_says_which_part_of_a_large_input_its_panels_show():
    """A 64x64 input (66x66 padded) is shown 48x48 around the window: each frame notes the
    input rows and columns in view; LeNet's 28x28 input is shown whole, with no note."""
    import convsee

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 64 * 64, 3)
    ).eval()
    net = convsee.wrap(model, input_size=(3, 64, 64), mean=(0.0,) * 3, std=(1.0,) * 3)
    [gif] = net.animate("sample:3", layer="0", channel=0)
    assert len(gif.sidecar["shown"]) > 3
    for s in gif.sidecar["shown"]:
        r, c = s["position"]
        # the 48 padded cells centred on the window (rows r..r+2 padded), kept inside 0..65
        top, left = (min(max(v + 1 - 24, 0), 66 - 48) - 1 for v in (r, c))
        rows = f"{max(top, 0)}-{min(top + 47, 63)}"
        cols = f"{max(left, 0)}-{min(left + 47, 63)}"
        assert s["zoom"] == f"zoomed: rows {rows}, cols {cols} of 64x64"
    [gif] = convsee.load().animate("sample:3", layer="conv1", channel=2)
    assert {s["zoom"] for s in gif.sidecar["shown"]} == {""}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["exemplars", "--layers", "pool9"], "unknown layer 'pool9'"),
        (["exemplars", "-k", "0"], "-k must be 1..64"),
        (["animate", "--layer", "fc1"], "animate shows a convolution or max pooling; fc1 is"),
        (["animate", "--channel", "6"], "--channel must be 0..5"),
        (["evolution", "NOPE.safetensors"], "does not exist"),
        (["attribution", "--target", "12"], "--target must be 0..9"),
        (["sweep", "missing.png"], "no such file"),
    ],
)
def test_view_errors(tmp_path, monkeypatch, capsys, mnist_dir, argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVSEE_DATA", str(mnist_dir))
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_evolution_without_snapshots(tmp_path, capsys):
    p = tmp_path / "plain.safetensors"
    from convsee.models.checkpoint import save_checkpoint

    save_checkpoint(LeNet5(), p, {})
    assert main(["evolution", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "record them by training with --snapshots N" in capsys.readouterr().err
