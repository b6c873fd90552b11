"""The model description, derived once: every capturable layer, its output shape, its receptive
field, its channels. Commands, figures and the live page read this instead of tables.

Three parts, lowest first:

- spec/field.py: receptive-field arithmetic (Field, conv_field, pool_field ...), no torch;
- spec/model.py: the data model (ModelSpec, Layer, Output) and the questions asked of it
  (scores_layer, default_layers, convs, maps, select_channels, score_kind ...), no torch;
- spec/tracer.py: `describe(model, input_shape)`, which derives a ModelSpec from one traced
  forward pass of a torch model, importing torch only when called.

LeNet-5's torch-free path builds its description from field.py and model.py alone
(models/lenet_numpy.py). Every name is re-exported here: `from convsee.spec import X`.
"""

from __future__ import annotations

from .field import PIXEL, Field, conv_field, pool_field, union_field, whole_field
from .model import (
    Layer,
    ModelSpec,
    Output,
    output_warning,
    score_kind,
    select_channels,
    with_fields,
)
from .tracer import describe, output_names

__all__ = [
    "Field",
    "Layer",
    "Output",
    "ModelSpec",
    "describe",
    "conv_field",
    "pool_field",
    "union_field",
    "whole_field",
    "PIXEL",
    "select_channels",
    "with_fields",
    "score_kind",
    "output_warning",
    "output_names",
]
