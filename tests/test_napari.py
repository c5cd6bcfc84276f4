"""The napari plugin, headless: napari discovers its manifest, the widget builds on an
offscreen Qt, and running it on an image layer returns a labels layer."""

import os

import numpy as np
import pytest
import torch

from nucseg.checkpoints import save_checkpoint
from nucseg.errors import NucsegInputError
from nucseg.models import ModelConfig, build_model
from nucseg.synth.nuclei import SynthConfig, generate

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari", reason="napari is not installed (pip install '.[napari]')")
pytest.importorskip("qtpy.QtWidgets", reason="no Qt binding for napari's widgets")


@pytest.fixture
def model_folder(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="camunet", base_width=4, depth=2))
    save_checkpoint(model, tmp_path / "model.pt")
    return tmp_path


def test_napari_finds_the_plugin_and_its_widget():
    import npe2

    manager = npe2.PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("nucseg")
    assert [w.display_name for w in manifest.contributions.widgets] == ["Segment nuclei"]
    command = manifest.contributions.commands[0]
    assert command.python_name == "nucseg.napari_plugin:segment_nuclei_widget"


def test_the_widget_adds_a_labels_layer_for_the_image_layer(model_folder):
    from magicgui import magicgui
    from qtpy.QtWidgets import QApplication

    from nucseg.napari_plugin import segment_nuclei_widget

    app = QApplication.instance() or QApplication([])
    config = SynthConfig(n_images=1, seed=2, kind_weights=(1, 0, 0), shapes=((64, 72),),
                         shape_weights=(1.0,))  # fmt: skip
    layer = napari.layers.Image(generate(config, "n")[0].pixels[..., 0], name="cells")
    widget = magicgui(segment_nuclei_widget)  # what napari's autogenerate builds
    assert {"image", "model_folder", "diameter"} <= {w.name for w in widget}
    widget.model_folder.value = model_folder
    data, meta, kind = widget(layer)
    labels_layer = napari.layers.Layer.create(data, meta, kind)
    assert kind == "labels" and labels_layer.name == "cells nuclei"
    assert labels_layer.data.shape == (64, 72) and labels_layer.data.dtype == np.int32
    assert app is not None


def test_a_stack_layer_is_segmented_plane_by_plane(model_folder):
    from nucseg.napari_plugin import _segmenter, segment_nuclei

    config = SynthConfig(n_images=2, seed=4, kind_weights=(1, 0, 0), shapes=((64, 72),),
                         shape_weights=(1.0,))  # fmt: skip
    frames = np.stack([image.pixels[..., 0] for image in generate(config, "n")])
    labels = segment_nuclei(frames, model_folder)
    assert labels.shape == (2, 64, 72)
    for frame, frame_labels in zip(frames, labels, strict=True):
        np.testing.assert_array_equal(frame_labels, _segmenter(str(model_folder)).segment(frame))
    with pytest.raises(NucsegInputError, match=r"shape \(64,\): not a 2-D image"):
        segment_nuclei(np.zeros(64, np.uint16), model_folder)

    class LazyStack:  # napari's dask arrays of large files: never read whole
        shape, dtype, ndim = frames.shape, frames.dtype, frames.ndim

        def __getitem__(self, index):
            return frames[index]

        def __array__(self, *args, **kwargs):
            raise AssertionError("the whole stack was read")

    np.testing.assert_array_equal(segment_nuclei(LazyStack(), model_folder), labels)
