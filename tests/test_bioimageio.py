"""The BioImage Model Zoo package: bioimageio.core's own test of it, offline, on CPU."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from nucseg.bioimageio import architecture_source, export_bioimageio
from nucseg.checkpoints import save_checkpoint
from nucseg.cli import main
from nucseg.errors import NucsegInputError
from nucseg.io.images import write_png
from nucseg.models import ModelConfig, build_model

pytest.importorskip("bioimageio.core")

NET = {"arch": "camunet", "base_width": 4, "depth": 2}


def _model_folder(tmp_path, **net):
    folder = tmp_path / "tiny"
    folder.mkdir()
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{**NET, **net}))
    normalize = {"low": 1.0, "high": 99.8, "method": "auto", "clahe": False}
    save_checkpoint(model, folder / "model.pt", {"normalize": normalize})
    thresholds = {"postprocess": {"mask_threshold": 0.6}, "grid": [{"dsb": 0.1}]}
    (folder / "thresholds.json").write_text(json.dumps(thresholds))
    (folder / "predict.json").write_text(json.dumps({"tta_views": [0], "nucleus_diameter": 20}))
    (folder / "README.md").write_text("# tiny\n\n## Validation\nnone\n")
    return folder


def test_the_package_passes_bioimageio_test_offline(tmp_path):
    from bioimageio.core import test_model

    image = np.zeros((100, 90), np.uint16) + 33_000
    image[20:40, 30:50] += 900
    write_png(image, tmp_path / "cells.png")
    out = tmp_path / "package"
    main(["export-bioimageio", str(_model_folder(tmp_path)), str(out), "--test-image",
          str(tmp_path / "cells.png")])  # fmt: skip
    summary = test_model(out / "rdf.yaml")
    failed = [d.name for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", failed
    rdf = yaml.safe_load((out / "rdf.yaml").read_text())
    assert rdf["outputs"][0]["axes"][1]["channel_names"] == ["semantic", "contour", "marker"]
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript"}
    assert rdf["config"]["nucseg"]["thresholds"] == {"postprocess": {"mask_threshold": 0.6}}
    assert rdf["config"]["nucseg"]["predict"]["nucleus_diameter"] == 20
    test_input = np.load(out / "test_input.npy")
    assert test_input.shape == (1, 1, 100, 88) and test_input.max() > 33_000  # not rescaled


def test_the_architecture_file_needs_only_torch(tmp_path):
    (tmp_path / "arch.py").write_text(architecture_source())
    code = (
        "import sys; sys.modules['nucseg'] = None; sys.path.insert(0, sys.argv[1])\n"
        "import torch, arch\n"
        "net = arch.HeadProbabilities(arch='camunet', base_width=4, depth=2)\n"
        "out = net.eval()(torch.rand(1, 1, 32, 48))\n"
        "assert out.shape == (1, 3, 32, 48) and 0 <= out.min() and out.max() <= 1\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-1500:]


def test_bad_folders_fail_with_one_line_and_no_package(tmp_path):
    with pytest.raises(NucsegInputError, match="no model.pt"):
        export_bioimageio(tmp_path, tmp_path / "out")
    softmax = _model_folder(tmp_path, arch="unet", classes=3)
    with pytest.raises(NucsegInputError, match="sigmoid heads"):
        export_bioimageio(softmax, tmp_path / "out")
    assert not (tmp_path / "out").exists()
