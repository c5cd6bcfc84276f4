"""nucseg: nucleus instance segmentation library behind the Snakemake workflow.

    from nucseg import Segmenter
    labels = Segmenter.from_folder("resources/models/dsb36gen20").segment(image)

Conventions used throughout:
- images are numpy arrays indexed ``[row, column]`` (``H x W``, optional trailing channel);
- instance labels are integer arrays ``H x W`` with 0 = background and 1..N = nuclei;
- probability maps are float arrays in [0, 1] with the image's ``H x W``.
"""

from nucseg.errors import NucsegInputError

__all__ = ["NucsegInputError", "Segmenter"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # the engine imports torch: only when asked for, so data-only jobs start fast
    if name == "Segmenter":
        from nucseg.segmenter import Segmenter

        return Segmenter
    raise AttributeError(f"module 'nucseg' has no attribute {name!r}")
