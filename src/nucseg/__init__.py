"""nucseg: nucleus instance segmentation library behind the Snakemake workflow.

Conventions used throughout:
- images are numpy arrays indexed ``[row, column]`` (``H x W``, optional trailing channel);
- instance labels are integer arrays ``H x W`` with 0 = background and 1..N = nuclei;
- probability maps are float arrays in [0, 1] with the image's ``H x W``.
"""

from nucseg.errors import NucsegInputError

__all__ = ["NucsegInputError"]
__version__ = "0.1.0"
