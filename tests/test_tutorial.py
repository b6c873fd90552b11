"""examples/tutorial.ipynb runs: every cell without error, its pictures in the outputs, and the
numbers it prints add up (each explained value equals the map's value)."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = REPO / "examples" / "tutorial.ipynb"


def _outputs(nb, kind):
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if kind == "text" and out.output_type == "stream":
                yield out.text
            elif kind in out.get("data", {}):
                yield out["data"][kind]


def test_the_committed_notebook_is_executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "commit the executed notebook"
    assert len(list(_outputs(nb, "image/png"))) >= 9


def test_the_tutorial_notebook_runs(tmp_path, mnist_dir):
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    env = {"CONVSEE_DATA": str(mnist_dir), "CONVSEE_THREADS": "1", "OMP_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()  # raises CellExecutionError on the first cell that fails
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    pictures = list(_outputs(nb, "image/png"))
    assert len(pictures) >= 9 and all(len(p) > 1000 for p in pictures)
    text = "".join(_outputs(nb, "text"))
    # conv2's six partial sums plus the bias equal the map's value, as printed
    parts = [float(v) for v in re.findall(r"channel \d: ([+-]\d+\.\d+)", text)]
    bias = float(re.search(r"bias     : ([+-]\d+\.\d+)", text).group(1))
    total, held = map(
        float, re.search(r"total    : ([+-]\d+\.\d+) \(the map: ([+-]\d+\.\d+)", text).groups()
    )
    assert len(parts) == 6
    assert abs(sum(parts) + bias - held) < 1e-3 and abs(total - held) < 1e-4
    assert "relative error" in text
