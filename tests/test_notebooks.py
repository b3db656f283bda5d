"""The example notebooks: stored without outputs, and executed end to end on small limits.

Each notebook has one cell tagged ``parameters``; the test adds a cell after it with the
small limits (as papermill would), runs the notebook in a fresh kernel (nbclient) in a
temporary directory, and checks that no cell failed, that the results showed as HTML, and
that no output holds a carriage return or a terminal escape code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).parent.parent / "examples" / "notebooks"
DATA = os.environ.get("INITLAB_DATA_DIR")

#: notebook -> the parameters CI runs it with (seconds, not minutes)
SMALL = {
    "article.ipynb": 'EPOCHS = 1\nSEEDS = 2\nLIMIT_TRAIN = 600\nLIMIT_VAL = 200\nOUT = "runs/article"\n'
                     "REPORT = False\n",
    "why-it-wont-train.ipynb": 'DEPTH = 20\nEPOCHS = 2\nLIMIT_TRAIN = 1500\nLIMIT_VAL = 300\n'
                               'OUT = "runs/why"\n',
}


def test_every_notebook_is_tested_and_stored_without_outputs() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == sorted(SMALL)
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: strip its outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{name}: one cell tagged 'parameters'"
        names_set = {line.split("=")[0].strip() for line in SMALL[name].splitlines()}
        assert names_set <= {line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line}


def _outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.skipif(not DATA, reason="INITLAB_DATA_DIR is not set")
@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_executes(name: str, tmp_path: Path, monkeypatch) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(SMALL[name]))
    monkeypatch.setenv("INITLAB_DATA_DIR", str(Path(DATA).resolve()))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows the figures
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = _outputs(nb)
    html = [o for o in outputs if "data" in o and "text/html" in o["data"]]
    assert any("initlab-repr" in o["data"]["text/html"] for o in html), "Results should show as HTML"
    images = [o for o in outputs if "data" in o and "image/png" in o["data"]]
    assert images, "the plots should show"
    for o in outputs:
        text = o.get("text", "") + "".join(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
        assert "\r" not in text and "\x1b[" not in text, f"control characters in an output: {text[:200]!r}"
