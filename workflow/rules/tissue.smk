TISSUE = config["tissue"]
TISSUE_SYNTH = TISSUE.get("synthetic", {})
TISSUE_ROOT = TISSUE_SYNTH.get("root", "resources/tissue")


rule tissue_synthesize:
    """Generated H&E-like tiles: images/*.png (RGBA) and masks/*.png (palette, 4 classes)."""
    output:
        images=directory(f"{TISSUE_ROOT}/images"),
        masks=directory(f"{TISSUE_ROOT}/masks"),
    log:
        "results/logs/tissue_synthesize.log",
    benchmark:
        "results/benchmarks/tissue_synthesize.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        spec={k: v for k, v in TISSUE_SYNTH.items() if k != "root"},
    script:
        "../scripts/tissue_synthesize.py"


rule tissue_prepare:
    """Read and check the tiles and annotations; 80/20 train/test split."""
    input:
        images=TISSUE["images"],
        masks=TISSUE["masks"],
    output:
        arrays="results/tissue/data/tiles.npz",
        split="results/tissue/data/split.tsv",
    log:
        "results/logs/tissue_prepare.log",
    benchmark:
        "results/benchmarks/tissue_prepare.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        test_fraction=TISSUE["test_fraction"],
        seed=TISSUE["split_seed"],
    script:
        "../scripts/tissue_prepare.py"


rule tissue_train:
    """U-Net with a softmax head, cross-entropy + multi-class Dice (a GPU job when one exists)."""
    input:
        arrays="results/tissue/data/tiles.npz",
        split="results/tissue/data/split.tsv",
    output:
        model="results/tissue/model/model.pt",
        last="results/tissue/model/last.pt",
        log_table=report(
            "results/tissue/model/train_log.tsv",
            caption="../report/train_log.rst",
            category="Tissue",
        ),
        curve=report(
            "results/tissue/model/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Tissue",
        ),
    log:
        "results/logs/tissue_train.log",
    benchmark:
        "results/benchmarks/tissue_train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: TISSUE["threads"]
    resources:
        gpu=1,
    params:
        spec=TISSUE,
        checkpoints="results/checkpoints/tissue",
    script:
        "../scripts/tissue_train.py"


rule tissue_evaluate:
    """Class maps of the test tiles, per-class Dice and IoU, colour overlays."""
    input:
        model="results/tissue/model/model.pt",
        arrays="results/tissue/data/tiles.npz",
        split="results/tissue/data/split.tsv",
    output:
        scores=report(
            "results/tissue/scores.tsv",
            caption="../report/tissue_scores.rst",
            category="Tissue",
        ),
        predictions=directory("results/tissue/predictions"),
        overlays=report(
            directory("results/tissue/overlays"),
            patterns=["{name}.png"],
            caption="../report/tissue_overlays.rst",
            category="Tissue",
        ),
    log:
        "results/logs/tissue_evaluate.log",
    benchmark:
        "results/benchmarks/tissue_evaluate.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: TISSUE["threads"]
    resources:
        gpu=1,
    params:
        device=TISSUE["train_settings"]["device"],
    script:
        "../scripts/tissue_evaluate.py"
