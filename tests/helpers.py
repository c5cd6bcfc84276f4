"""Test helpers shared by several test modules."""

from pathlib import Path

from nucseg.datasets import SourceSpec, assemble_dataset, convert_source

REPO = Path(__file__).resolve().parents[1]
#: the shipped nucleus model (config.yaml's `shipped`)
SHIPPED_MODEL = REPO / "resources" / "models" / "dsb36gen20"


def build_version(sources: list[SourceSpec], out_dir: Path, **selection):
    """Convert each source beside ``out_dir`` (as rule convert_source does), then assemble."""
    source_dirs = []
    for source in sources:
        source_dir = Path(out_dir).parent / "sources" / source.name
        convert_source(source, source_dir)
        source_dirs.append(source_dir)
    return assemble_dataset(source_dirs, out_dir, **selection)
