"""``nucseg`` command line.

nucseg score SUBMISSION SOLUTION [--per-image TSV]   DSB score of a submission
nucseg predict --model DIR [--model DIR ...] IMAGE... --out DIR   segment image files
nucseg synth OUT_DIR [--train N] [--test N] [--seed S] write the synthetic demo sources
nucseg convert FORMAT PATH OUT_DIR [--labels-csv CSV]   read and check one raw source
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from nucseg.errors import NucsegInputError
from nucseg.scripting import configure_logging, fail


def _score(args: argparse.Namespace) -> None:
    from nucseg.io.kaggle import read_solution_csv
    from nucseg.io.tables import write_table
    from nucseg.submission import read_submission, score_images, summarize_scores

    truth = read_solution_csv(args.solution)
    predicted = read_submission(args.submission, {k: v.shape for k, v in truth.items()})
    per_image = score_images(truth, predicted)
    if args.per_image:
        write_table(per_image, args.per_image)
    overall = summarize_scores(per_image).iloc[0]
    print(
        f"DSB score {overall.dsb:.4f} over {len(per_image)} images "
        f"(AP@0.5 {overall.ap50:.4f}, AP@0.75 {overall.ap75:.4f}, F1@0.5 {overall.f1_50:.4f}, "
        f"PQ {overall.pq:.4f}; nuclei {overall.n_pred} predicted / {overall.n_true} true)"
    )


def _predict(args: argparse.Namespace) -> None:
    import torch

    from nucseg.inference import image_files, predict_images
    from nucseg.segmenter import Segmenter, folder_file, folder_predict_settings

    torch.set_num_threads(max(1, args.threads))
    views = None if folder_predict_settings(args.model) else range(8)  # a folder's own, or all
    if args.tta is not None:
        if not re.fullmatch(r"[0-7](,[0-7])*", args.tta):
            raise NucsegInputError(f"--tta: expected comma-separated views 0..7, got {args.tta!r}")
        views = [int(v) for v in args.tta.split(",")]
    scales = None
    if args.scales is not None:
        try:
            scales = [float(v) for v in args.scales.split(",")]
        except ValueError:
            raise NucsegInputError(
                f"--scales: expected numbers like 1,0.5, got {args.scales!r}"
            ) from None
        if not all(0 < v <= 4 for v in scales):
            raise NucsegInputError(f"--scales: factors must be in (0, 4], got {args.scales!r}")
    segmenter = Segmenter.from_models(
        args.model,
        thresholds=args.thresholds,
        views=views,
        scales=scales,
        tile=args.tile,
        precision=args.precision,
        diameter=args.diameter,
        dim_gamma=args.dim_gamma,
        weights=args.weights,
        vote=args.vote,
        device=args.device,
    )
    files = image_files(args.images)
    if args.compile:
        segmenter = segmenter.compiled()
    source = args.thresholds or folder_file(args.model, "thresholds.json")
    print(f"post-processing thresholds: {source or 'defaults (no --thresholds given)'}")
    outputs = tuple(o.strip() for o in args.outputs.split(","))
    counts = predict_images(
        segmenter,
        files,
        args.out,
        outputs=outputs,
        pixel_size_um=args.pixel_size,
        channel=args.channel,
        progress=_print_progress,
    )
    print(f"{len(counts)} images, {sum(counts.values())} nuclei -> {args.out}/")


def _print_progress(done: int, total: int, name: str, nuclei: int, seconds: float) -> None:
    """One line per image on stderr (stdout keeps the summary)."""
    print(f"[{done}/{total}] {name}: {nuclei} nuclei ({seconds:.1f} s)", file=sys.stderr)


def _synth(args: argparse.Namespace) -> None:
    from nucseg.synth.nuclei import write_demo_sources

    write_demo_sources(Path(args.out_dir), n_train=args.train, n_test=args.test, seed=args.seed)


def _convert(args: argparse.Namespace) -> None:
    from nucseg.datasets import SourceSpec, convert_source

    spec = SourceSpec(
        name=args.name or Path(args.path).name,
        format=args.format,
        path=Path(args.path),
        overlap=args.overlap,
        labels_csv=args.labels_csv,
        crop=tuple(args.crop) if args.crop else None,
        frames=tuple(args.frames) if args.frames else None,
        min_coverage=args.min_coverage,
    )
    manifest = convert_source(spec, args.out_dir)
    categories = ", ".join(f"{k} {v}" for k, v in manifest.category.value_counts().items())
    print(
        f"{len(manifest)} images, {int(manifest.n_nuclei.sum())} nuclei ({categories}) "
        f"checked and written to {args.out_dir}"
    )


def _export_bioimageio(args: argparse.Namespace) -> None:
    from nucseg.bioimageio import export_bioimageio

    rdf = export_bioimageio(
        args.model_folder, args.out_dir, test_image=args.test_image, license_id=args.license
    )
    print(f"bioimage.io package -> {rdf} (check it: bioimageio test {rdf})")


def _add_score(commands) -> None:
    score = commands.add_parser("score", help="score a submission CSV against a solution CSV")
    score.add_argument("submission", type=Path)
    score.add_argument("solution", type=Path)
    score.add_argument("--per-image", type=Path, help="write per-image scores to this TSV")
    score.set_defaults(run=_score)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict", help="segment image files with a trained model or an ensemble of them"
    )
    predict.add_argument(
        "images",
        nargs="+",
        type=Path,
        help="PNG/TIFF/JPEG images, or folders of them (or in Kaggle's <id>/images/ layout)",
    )
    predict.add_argument(
        "--model",
        action="append",
        required=True,
        type=Path,
        help="model folder (with model.pt) or checkpoint; repeat for an ensemble",
    )
    predict.add_argument(
        "--out", required=True, type=Path, help="folder for <stem>.tif + submission.csv"
    )
    predict.add_argument("--weights", type=float, nargs="+", help="one weight per --model")
    predict.add_argument("--vote", action="store_true", help="majority vote instead of mean")
    predict.add_argument(
        "--thresholds",
        type=Path,
        help="tuned results/thresholds/<name>.json (default: a single model folder's own)",
    )
    predict.add_argument(
        "--outputs",
        default="tif,csv",
        help="what to write, comma-separated: tif (label images), csv (submission, "
        "measurements, summary), roi (Fiji ROI sets), geojson (QuPath); default tif,csv",
    )
    predict.add_argument(
        "--pixel-size", type=float, help="micrometres per pixel, written into the label TIFFs"
    )
    predict.add_argument(
        "--channel",
        type=int,
        help="the nuclear stain's channel (from 0) of multi-channel images, e.g. a DAPI "
        "channel of a hyperstack (needed there) or of an RGB file; stacks (time, z) are "
        "segmented plane by plane",
    )
    _add_predict_settings(predict)
    predict.set_defaults(run=_predict)


def _add_predict_settings(predict) -> None:
    """How ``nucseg predict`` runs the network: views, scales, tiles, threads, precision."""
    predict.add_argument(
        "--tta", help="dihedral views, e.g. 0,5 (default: the model folder's, else all 8)"
    )
    predict.add_argument(
        "--scales",
        help="sizes to predict at, the most confident kept, e.g. 1,0.5,0.33 "
        "(default: the model folder's, else 1)",
    )
    predict.add_argument(
        "--tile", type=int, help="tile images with a larger side (default: the folder's, 1024)"
    )
    predict.add_argument(
        "--diameter",
        type=float,
        help="typical nucleus diameter of your images in pixels: one rescaled pass instead "
        "of the scale search (a model folder records the size it learned from)",
    )
    predict.add_argument(
        "--dim-gamma",
        type=float,
        help="fluorescence: one more pass brightened to this power above the background adds "
        "the dim nuclei the plain pass missed, on images whose plain map shows a trace of "
        "one (default: the model folder's; 0: off)",
    )
    predict.add_argument("--threads", type=int, default=2)
    predict.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    predict.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="auto: bf16 on a CPU with native bfloat16 (float16 on CUDA), else fp32",
    )
    predict.add_argument(
        "--compile",
        action="store_true",
        help="run the network through torch.compile (a one-off compilation of ~15-60 s; "
        "pays on many images of one size, e.g. a time-lapse; docs/benchmarks.md)",
    )


def _add_synth(commands) -> None:
    synth = commands.add_parser(
        "synth", help="write synthetic stage1_train/, stage1_test/ and stage1_solution.csv"
    )
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--train", type=int, default=48)
    synth.add_argument("--test", type=int, default=24)
    synth.add_argument("--seed", type=int, default=2018)
    synth.set_defaults(run=_synth)


def _add_convert(commands) -> None:
    convert = commands.add_parser(
        "convert",
        help="read and check one raw source (as rule convert_source): images/, labels/, "
        "manifest.tsv; one error line naming the first bad file",
    )
    convert.add_argument("format", help="kaggle_stage1, monuseg, ctc or folder")
    convert.add_argument("path", type=Path, help="the source's folder")
    convert.add_argument("out_dir", type=Path)
    convert.add_argument("--labels-csv", type=Path, help="kaggle_stage1: nuclei from this CSV")
    convert.add_argument("--overlap", choices=["larger", "error"], default="larger")
    convert.add_argument("--crop", type=int, nargs=2, metavar=("WIDTH", "STEP"))
    convert.add_argument("--frames", nargs="+", help="ctc: the annotated frames to use, e.g. 021")
    convert.add_argument(
        "--min-coverage",
        type=float,
        default=0.5,
        help="ctc: labelled share of a frame's foreground for it to count as fully annotated",
    )
    convert.add_argument("--name", help="source name in the manifest (default: folder name)")
    convert.set_defaults(run=_convert)


def _add_bioimageio(commands) -> None:
    bioimageio = commands.add_parser(
        "export-bioimageio",
        help="write a model folder as a BioImage Model Zoo package (rdf.yaml, weights, "
        "TorchScript, test tensors)",
    )
    bioimageio.add_argument("model_folder", type=Path, help="e.g. resources/models/dsb36gen20")
    bioimageio.add_argument("out_dir", type=Path, help="the package folder (replaced)")
    bioimageio.add_argument(
        "--test-image", type=Path, help="image for the test tensors and cover (default: generated)"
    )
    bioimageio.add_argument(
        "--license",
        default="CC-BY-NC-SA-4.0",
        help="SPDX id of the weights' licence (default: CC-BY-NC-SA-4.0, as the shipped "
        "models learned from MoNuSeg)",
    )
    bioimageio.set_defaults(run=_export_bioimageio)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nucseg", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_score(commands)
    _add_predict(commands)
    _add_synth(commands)
    _add_convert(commands)
    _add_bioimageio(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    configure_logging(None, level=logging.WARNING)
    try:
        args.run(args)
    except NucsegInputError as error:
        fail(str(error))


if __name__ == "__main__":
    main()
