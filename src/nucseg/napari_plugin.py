"""napari plugin: segment the selected image layer with a nucseg model folder.

Installed with ``pip install -e '.[napari]'``; napari finds it through the manifest
``nucseg/napari.yaml`` (npe2) and shows **Plugins > nucseg: Segment nuclei**: pick an image
layer and a model folder (default: the shipped model), optionally the typical nucleus
diameter in pixels; a labels layer ``<image> nuclei`` is added.  Segmentation runs through
:class:`nucseg.segmenter.Segmenter` (the engine behind ``nucseg predict``), loaded once per
folder.
"""

from functools import cache
from pathlib import Path

import napari
import numpy as np

from nucseg.errors import NucsegInputError

#: the shipped model, when nucseg runs from its repository checkout
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "dsb36"


@cache
def _segmenter(folder: str):
    from nucseg.segmenter import Segmenter

    return Segmenter.from_folder(folder)


def segment_nuclei(
    image: np.ndarray, model_folder: Path = SHIPPED_MODEL, diameter: float = 0.0
) -> np.ndarray:
    """Instance labels of a 2-D gray or RGB image (0 = background); ``diameter`` > 0: the
    nuclei's typical size in pixels (one rescaled pass), 0: the folder's own scales."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] not in (3, 4):
        raise NucsegInputError(
            f"image layer of shape {image.shape}: pick one 2-D plane (gray or RGB)"
        )
    return _segmenter(str(model_folder)).segment(image, diameter=diameter or None)


def segment_nuclei_widget(
    image: napari.layers.Image,
    model_folder: Path = SHIPPED_MODEL,
    diameter: float = 0.0,
) -> napari.types.LayerDataTuple:
    """The widget napari shows: the labels of the image layer as a new labels layer."""
    labels = segment_nuclei(image.data, model_folder, diameter)
    return labels, {"name": f"{image.name} nuclei"}, "labels"
