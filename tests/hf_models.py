"""Hugging Face model folders for the tests, built offline: a small config, seeded weights,
`save_pretrained`, and an image processor saved beside them (preprocessor_config.json) whose
mean, std and sizes differ from ImageNet's, so a value read from the wrong place shows.

Nothing here downloads. `build(kind, folder)` writes one folder and returns its path:

- resnet: ResNetConfig (basic blocks, 3 stages) with ConvNextImageProcessor (shortest_edge 64,
  crop_pct 0.8: shorter side 80, centre 64x64; bicubic), as microsoft/resnet-50 ships it.
- convnext: ConvNextConfig (3 stages) with ConvNextImageProcessor (shortest_edge 48, crop_pct
  0.9: shorter side 53; bilinear).
- mobilenet_v2: MobileNetV2Config (depth_multiplier 0.35) with MobileNetV2ImageProcessor
  (shorter side 72, centre 64x64 cut; bilinear).
- vit: a one-block ViT (its layers output tokens) with ViTImageProcessor (32x32 stretch).
- bert: a text model's config only.
"""

from __future__ import annotations

from pathlib import Path

CLASSES = ["tabby", "rocket", "coffee", "astronaut", "coin", "horse"]
KINDS = ("resnet", "convnext", "mobilenet_v2")


def processor(name: str, **kw):
    """transformers' PIL image processor NAME (transformers 5 names it NAMEPil; 4 has the
    PIL one under NAME)."""
    import transformers

    cls = getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)
    return cls(**kw)


def _labels(k: int = len(CLASSES)) -> dict:
    names = CLASSES[:k]
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def _model(kind: str):
    import transformers as t

    if kind == "resnet":
        cfg = t.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16, 24], depths=[1, 1, 1], layer_type="basic"
        )
        cls = t.ResNetForImageClassification
        proc = processor(
            "ConvNextImageProcessor",
            size={"shortest_edge": 64},
            crop_pct=0.8,
            resample=3,
            image_mean=[0.52, 0.41, 0.33],
            image_std=[0.21, 0.27, 0.31],
        )
    elif kind == "convnext":
        cfg = t.ConvNextConfig(
            patch_size=4, num_stages=3, hidden_sizes=[8, 16, 24], depths=[1, 1, 1]
        )
        cls = t.ConvNextForImageClassification
        proc = processor(
            "ConvNextImageProcessor",
            size={"shortest_edge": 48},
            crop_pct=0.9,
            resample=2,
            image_mean=[0.45, 0.5, 0.55],
            image_std=[0.3, 0.2, 0.25],
        )
    elif kind == "mobilenet_v2":
        cfg = t.MobileNetV2Config(depth_multiplier=0.35, image_size=64, min_depth=4)
        cls = t.MobileNetV2ForImageClassification
        proc = processor(
            "MobileNetV2ImageProcessor",
            size={"shortest_edge": 72},
            crop_size={"height": 64, "width": 64},
            do_center_crop=True,
            resample=2,
            image_mean=[0.6, 0.5, 0.4],
            image_std=[0.2, 0.3, 0.4],
        )
    elif kind == "vit":
        cfg = t.ViTConfig(
            image_size=32,
            patch_size=8,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
        cls = t.ViTForImageClassification
        proc = processor(
            "ViTImageProcessor",
            size={"height": 32, "width": 32},
            image_mean=[0.4, 0.4, 0.4],
            image_std=[0.3, 0.3, 0.3],
        )
    else:
        raise ValueError(kind)
    for k, v in _labels().items():
        setattr(cfg, k, v)
    cfg.num_labels = len(CLASSES)
    return cfg, cls, proc


def build(kind: str, folder, seed: int = 0) -> Path:
    """Write the folder of a small model of this kind (seeded weights) and return it."""
    import torch

    folder = Path(folder)
    if kind == "bert":
        from transformers import BertConfig

        BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(
            folder
        )
        return folder
    cfg, cls, proc = _model(kind)
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.reset_parameters()  # torch's init keeps the signal (transformers' 0.02 fades)
            if isinstance(m, torch.nn.BatchNorm2d):  # statistics of real inputs, not 0 / 1
                m.reset_running_stats()
                m.momentum = None  # a plain average over the batches below
        model.train()
        c, h, w = 3, *(2 * [int(getattr(cfg, "image_size", 64) or 64)])
        for _ in range(4):
            model(torch.rand(8, c, h, w, generator=g) * 4 - 2)
        model.eval()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
        for p in model.parameters():  # classifier scores that spread (not all one class)
            if p.dim() == 2 and p.shape[0] == len(CLASSES):
                p.mul_(4.0)
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder
