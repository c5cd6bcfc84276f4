"""Malformed-input corpus, run through the real command line (`nucseg convert`, `nucseg
predict`) in a subprocess, as a user would meet it.

A bad input must give exit status 1 and exactly one stderr line ``nucseg: error: <file>: <what
is wrong>``, no traceback, and leave no output folder (nor a temporary one) behind. Valid but
unusual inputs (image modes, odd sizes) must convert. Each case is built here from generated
arrays; no binary is committed. The bad-input table of docs/reference.md lists these cases
by name; config errors are covered by
tests/test_workflow.py::test_bad_config_fails_with_the_key_named.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from nucseg.datasets import read_manifest
from nucseg.synth.nuclei import write_ctc, write_monuseg

NUCSEG = [sys.executable, "-m", "nucseg.cli"]
SHAPE = (32, 40)


def disk(shape=SHAPE, center=(16, 20), radius=6) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return ((rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2).astype(np.uint8) * 255


def gray_image(shape=SHAPE) -> np.ndarray:
    return (30 + disk(shape, (shape[0] // 2, shape[1] // 2), min(shape) // 4) // 2).astype(np.uint8)


def stage1(root: Path, image: Image.Image | bytes, masks: list[np.ndarray], image_id="img0"):
    """A Kaggle stage1 tree with one image folder; returns its root."""
    folder = root / "raw" / image_id
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    path = folder / "images" / f"{image_id}.png"
    if isinstance(image, bytes):
        path.write_bytes(image)
    else:
        image.save(path)
    for number, mask in enumerate(masks):
        Image.fromarray(mask).save(folder / "masks" / f"m{number}.png")
    return root / "raw"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (the pixel data would never fit in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))


def convert(source: Path, *extra: str, fmt: str = "kaggle_stage1") -> list[str]:
    return ["convert", fmt, str(source), "{out}", *extra]


def labels_csv(root: Path, rows: list[tuple[str, str]], image_id="img0") -> list[str]:
    source = stage1(root, Image.fromarray(gray_image()), [], image_id=image_id)
    path = root / "labels.csv"
    path.write_text("ImageId,EncodedPixels\n" + "".join(f"{i},{r}\n" for i, r in rows))
    return convert(source, "--labels-csv", str(path))


def monuseg_with_xml(root: Path, xml: str | None = None, edit=None) -> list[str]:
    write_monuseg(root / "mon", n_tiles=1, seed=3, shape=(64, 64))
    (xml_path,) = (root / "mon" / "Annotations").glob("*.xml")
    xml_path.write_text(xml if xml is not None else edit(xml_path.read_text()))
    return convert(root / "mon", fmt="monuseg")


def ctc_with_float_labels(root: Path) -> list[str]:
    write_ctc(root / "Fluo", n_frames=1, seed=2, shape=(64, 80))
    tifffile.imwrite(root / "Fluo/01_GT/SEG/man_seg000.tif", np.zeros((64, 80), np.float32))
    return convert(root / "Fluo", fmt="ctc")


def truncated_png(root: Path) -> list[str]:
    good = stage1(root / "tmp", Image.fromarray(gray_image()), [disk()])
    data = (good / "img0/images/img0.png").read_bytes()
    shutil.rmtree(root / "tmp")
    return convert(stage1(root, data[: len(data) // 2], [disk()]))


def non_binary_mask() -> np.ndarray:
    mask = disk()
    mask[14:18, 18:22] = 128  # a second grey level inside the nucleus
    return mask


def labels_csv_without_encoded_pixels(root: Path) -> list[str]:
    args = labels_csv(root, [("img0", "1 3")])
    (root / "labels.csv").write_text("ImageId,Pixels\nimg0,1 3\n")
    return args


def checkpoint(root: Path, payload_bytes: bytes | None = None, mismatched=False) -> list[str]:
    """`nucseg predict` with a corrupt checkpoint, or one whose weights are of another net."""
    import torch

    from nucseg.checkpoints import save_checkpoint
    from nucseg.models import ModelConfig, build_model

    path = root / "model.pt"
    if payload_bytes is not None:
        path.write_bytes(payload_bytes)
    else:
        save_checkpoint(build_model(ModelConfig(base_width=4, depth=2)), path)
        payload = torch.load(path, weights_only=True)
        payload["net"]["depth"] = 3  # weights of a depth-2 net under a depth-3 config
        torch.save(payload, path)
    Image.fromarray(gray_image()).save(root / "cells.png")
    return ["predict", "--model", str(path), str(root / "cells.png"), "--out", "{out}"]


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], list[str]]
    expected: str  # in the error line; empty for valid inputs


MASK = [disk()]
ERRORS = {
    "truncated_png": Case(truncated_png, "img0.png: corrupt or truncated image"),
    "zero_byte_image": Case(
        lambda r: convert(stage1(r, b"", MASK)), "img0.png: image file is empty"
    ),
    "not_an_image": Case(
        lambda r: convert(stage1(r, b"id,name\n1,a\n", MASK)), "img0.png: not a readable image"
    ),
    "mask_size_differs": Case(
        lambda r: convert(stage1(r, Image.fromarray(gray_image()), [disk((30, 40))])),
        "m0.png: mask is 30x40 but its image is 32x40",
    ),
    "non_binary_mask": Case(
        lambda r: convert(stage1(r, Image.fromarray(gray_image()), [non_binary_mask()])),
        "m0.png: mask is not binary",
    ),
    "all_zero_mask": Case(
        lambda r: convert(stage1(r, Image.fromarray(gray_image()), [disk(), disk() * 0])),
        "m1.png: mask is empty",
    ),
    "overlapping_masks_policy_error": Case(
        lambda r: convert(
            stage1(r, Image.fromarray(gray_image()), [disk(), disk(center=(18, 22))]),
            "--overlap",
            "error",
        ),
        "m1.png: nucleus overlaps another one",
    ),
    "image_header_20000x20000": Case(
        lambda r: convert(stage1(r, png_header_only(20000, 20000), MASK)),
        "img0.png: image too large to read (Image size (400000000 pixels) exceeds limit",
    ),
    "id_with_dot_dot_slash": Case(
        lambda r: labels_csv(r, [("../img0", "1 3")]), "image ../img0 has rows but no folder"
    ),
    "id_folder_with_dot_dot": Case(
        lambda r: convert(stage1(r, Image.fromarray(gray_image()), MASK, image_id="a..b")),
        "image id 'a..b' is not safe as a file name",
    ),
    "xml_without_regions": Case(
        lambda r: monuseg_with_xml(
            r, '<Annotations><Annotation Id="1"><Regions/></Annotation></Annotations>'
        ),
        ".xml: no Region",
    ),
    "xml_malformed_vertices": Case(
        lambda r: monuseg_with_xml(r, edit=lambda text: text.replace('X="', 'X="x', 1)),
        ".xml: region 1 has a vertex without numeric X",
    ),
    "xml_not_xml": Case(lambda r: monuseg_with_xml(r, "<Annotations><oops"), "not a readable XML"),
    "ctc_label_wrong_dtype": Case(
        ctc_with_float_labels, "man_seg000.tif: label image has dtype float32"
    ),
    "rle_odd_number_of_values": Case(
        lambda r: labels_csv(r, [("img0", "1 3 7")]), "encoding has an odd number of values"
    ),
    "rle_not_numbers": Case(
        lambda r: labels_csv(r, [("img0", "1 x")]), "labels.csv (image img0): encoding contains"
    ),
    "rle_overlapping_nuclei_policy_error": Case(
        lambda r: labels_csv(r, [("img0", "1 5"), ("img0", "3 5")]) + ["--overlap", "error"],
        "row 2: nucleus overlaps another one",
    ),
    "rle_pairs_out_of_bounds": Case(
        lambda r: labels_csv(r, [("img0", "1270 20")]), "beyond the 32x40 image"
    ),
    "rle_unsorted_pairs": Case(
        lambda r: labels_csv(r, [("img0", "20 2 5 2")]), "pairs are not sorted by start"
    ),
    "labels_csv_without_column": Case(
        labels_csv_without_encoded_pixels,
        "labels.csv: missing column(s) EncodedPixels",
    ),
    "checkpoint_corrupt": Case(
        lambda r: checkpoint(r, b"PK\x03\x04 not really a zip"),
        "model.pt: corrupt or unreadable checkpoint",
    ),
    "checkpoint_of_another_architecture": Case(
        lambda r: checkpoint(r, mismatched=True), "model.pt: the weights do not fit the network"
    ),
}


def unusual(image: Image.Image, masks=None) -> Callable[[Path], list[str]]:
    shape = (image.height, image.width)
    if masks is None:
        masks = [disk(shape, (shape[0] // 2, shape[1] // 2), max(1, min(shape) // 4))]
    return lambda root: convert(stage1(root, image, masks))


GRAY = gray_image()
VALID = {
    "mode_RGBA": unusual(Image.fromarray(np.dstack([GRAY, GRAY, GRAY, GRAY * 0 + 255]))),
    "mode_P_palette": unusual(Image.fromarray(np.dstack([GRAY] * 3)).convert("P")),
    "mode_LA": unusual(Image.merge("LA", [Image.fromarray(GRAY)] * 2)),
    "mode_16_bit": unusual(Image.fromarray(GRAY.astype(np.uint16) * 200)),
    "mode_1_bit": unusual(Image.fromarray(GRAY > 40)),
    "size_151x500": unusual(Image.fromarray(gray_image((151, 500)))),
    "size_1x1": unusual(
        Image.fromarray(np.full((1, 1), 200, np.uint8)), [np.full((1, 1), 255, np.uint8)]
    ),
}


def run_cli(args: list[str], out: Path) -> subprocess.CompletedProcess:
    argv = [arg.replace("{out}", str(out)) for arg in args]
    return subprocess.run([*NUCSEG, *argv], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_input_gives_one_error_line_and_no_output(name, tmp_path):
    case = ERRORS[name]
    out = tmp_path / "results" / "out"
    result = run_cli(case.build(tmp_path), out)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("nucseg: error: "), result.stderr
    assert case.expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists() and not list(out.parent.glob(".out.tmp*")), "partial output left"


@pytest.mark.parametrize("name", sorted(VALID))
def test_unusual_but_valid_input_converts(name, tmp_path):
    out = tmp_path / "results" / "out"
    result = run_cli(VALID[name](tmp_path), out)
    assert result.returncode == 0, result.stderr
    manifest = read_manifest(out / "manifest.tsv")
    assert len(manifest) == 1 and manifest.n_nuclei.tolist() == [1]
