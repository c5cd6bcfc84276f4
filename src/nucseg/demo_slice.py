"""The real-image slice the demo ships: a few DSB2018 stage1_train images (CC0) in Kaggle's
layout, picked by a seeded, documented rule.

Rule: from the images of one source in a materialised fold of a dataset version (the fold
the shipped model was trained on), the *test* images are drawn from the fold's validation
side (so the shipped model never saw them) and the *training* images from its training
side.  Per category a fixed count is drawn; within a category the images are grouped by
size (height x width) and drawn round-robin over the size groups in sorted order, each
group's order a permutation from ``numpy.random.default_rng(seed)``, so fluorescence of
several sizes is covered; sizes above 300,000 pixels give at most 2 images per part (they
weigh megabytes each).

    python -m nucseg.demo_slice resources/realdata/dsb2018/stage1_train \\
        results/datasets/real/manifest.tsv results/datasets/real/folds/0 resources/dsb2018_slice

writes ``stage1_train/<id>/{images,masks}/`` (copies of the originals),
``stage1_test/<id>/images/`` and ``stage1_solution.csv`` (the test masks in Kaggle's
solution form) and ``ids.tsv`` (id, part, category, size).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.datasets import read_manifest
from nucseg.io.atomic import atomic_directory
from nucseg.io.kaggle import list_stage1, read_mask_labels, write_solution_csv
from nucseg.io.tables import write_table

#: images per category in each part of the demo slice
TEST_COUNTS = {"fluorescence": 10, "histology": 4, "brightfield": 2}
TRAIN_COUNTS = {"fluorescence": 33, "histology": 12, "brightfield": 2}
#: sizes above this many pixels contribute at most LARGE_PER_SIZE images per part
LARGE_PIXELS, LARGE_PER_SIZE = 300_000, 2


def draw_balanced(
    candidates: pd.DataFrame, counts: dict[str, int], rng: np.random.Generator
) -> list[str]:
    """Ids drawn per category (``counts``), round-robin over the category's size groups
    (sorted), each group in a random order of ``rng``; sorted."""
    chosen = []
    for category, count in sorted(counts.items()):
        rows = candidates[candidates["category"] == category]
        sizes = rows["height"].astype(str) + "x" + rows["width"].astype(str)
        queues = []
        for size in sorted(sizes.unique()):
            ids = list(rng.permutation(sorted(rows.loc[sizes == size, "id"])))
            height, width = (int(v) for v in size.split("x"))
            # large fields weigh megabytes each: at most LARGE_PER_SIZE of each such size
            queues.append(ids[:LARGE_PER_SIZE] if height * width > LARGE_PIXELS else ids)
        picked = []
        while len(picked) < count and any(queues):
            for queue in queues:
                if queue and len(picked) < count:
                    picked.append(str(queue.pop(0)))
        chosen += picked
    return sorted(chosen)


def select_slice(
    manifest: pd.DataFrame, split: pd.DataFrame, source: str, seed: int = 2018
) -> pd.DataFrame:
    """``id, part, category, size`` of the demo slice (see the module docstring)."""
    table = manifest[manifest["source"] == source].merge(split, on="id")
    rng = np.random.default_rng(seed)
    parts = []
    for part, side, counts in (("test", "valid", TEST_COUNTS), ("train", "train", TRAIN_COUNTS)):
        ids = draw_balanced(table[table["side"] == side], counts, rng)
        rows = table.set_index("id").loc[ids]
        parts.append(
            pd.DataFrame(
                {
                    "id": ids,
                    "part": part,
                    "category": rows["category"].to_numpy(),
                    "size": (
                        rows["height"].astype(str) + "x" + rows["width"].astype(str)
                    ).to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def write_slice(stage1_train: Path | str, chosen: pd.DataFrame, out_dir: Path | str) -> None:
    """Copy the chosen images of a Kaggle stage1_train tree into ``out_dir`` (see module)."""
    stage1_train = Path(stage1_train)
    entries = {e.image_id: e for e in list_stage1(stage1_train, require_masks=True)}
    with atomic_directory(out_dir) as tmp:
        solution = {}
        for row in chosen.itertuples():
            if row.part == "train":
                shutil.copytree(stage1_train / row.id, tmp / "stage1_train" / row.id)
                continue
            entry = entries[row.id]
            images = tmp / "stage1_test" / row.id / "images"
            images.mkdir(parents=True)
            shutil.copyfile(entry.image_path, images / entry.image_path.name)
            height, width = (int(v) for v in row.size.split("x"))
            solution[row.id] = read_mask_labels(entry.mask_paths, (height, width))
        write_solution_csv(solution, tmp / "stage1_solution.csv")
        write_table(chosen, tmp / "ids.tsv")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage1_train", type=Path, help="the real DSB2018 stage1_train folder")
    parser.add_argument("manifest", type=Path, help="manifest.tsv of the dataset version")
    parser.add_argument("fold", type=Path, help="the fold folder the shipped model trained on")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--source", default="dsb2018_stage1_train")
    parser.add_argument("--seed", type=int, default=2018)
    args = parser.parse_args(argv)
    split = pd.read_csv(args.fold / "split.tsv", sep="\t", dtype=str)
    chosen = select_slice(read_manifest(args.manifest), split, args.source, args.seed)
    write_slice(args.stage1_train, chosen, args.out_dir)
    print(chosen.groupby(["part", "category"]).size().to_string())


if __name__ == "__main__":
    main()
