NERVE = config["nerve"]
NERVE_SYNTH = NERVE.get("synthetic", {})
NERVE_ROOT = NERVE_SYNTH.get("root", "resources/nerve")


rule nerve_synthesize:
    """Generated ultrasound in the Kaggle layout: train/ pairs, test/, test masks as CSV."""
    output:
        train=directory(f"{NERVE_ROOT}/train"),
        test=directory(f"{NERVE_ROOT}/test"),
        solution=f"{NERVE_ROOT}/test_solution.csv",
    log:
        "results/logs/nerve_synthesize.log",
    benchmark:
        "results/benchmarks/nerve_synthesize.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        spec={k: v for k, v in NERVE_SYNTH.items() if k != "root"},
    script:
        "../scripts/nerve_synthesize.py"


if NERVE.get("source"):

    rule nerve_convert:
        """A real ultrasound set (nerve.source) in the Kaggle 2016 layout the task reads."""
        input:
            NERVE["source"]["path"],
        output:
            train=directory(f"{NERVE['source']['out']}/train"),
            test=directory(f"{NERVE['source']['out']}/test"),
            solution=f"{NERVE['source']['out']}/test_solution.csv",
        log:
            "results/logs/nerve_convert.log",
        benchmark:
            "results/benchmarks/nerve_convert.tsv"
        conda:
            "../../envs/torch.yaml"
        params:
            format=NERVE["source"]["format"],
        script:
            "../scripts/nerve_convert.py"


rule nerve_prepare:
    """Read and check the training pairs, shrink them, split by nerve presence."""
    input:
        NERVE["train"],
    output:
        arrays="results/nerve/data/train.npz",
        split="results/nerve/data/split.tsv",
    log:
        "results/logs/nerve_prepare.log",
    benchmark:
        "results/benchmarks/nerve_prepare.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        size=NERVE["input_size"],
        valid_fraction=NERVE["valid_fraction"],
        seed=NERVE["split_seed"],
    script:
        "../scripts/nerve_prepare.py"


rule nerve_train:
    """U-Net with a presence head on the shrunk images (a GPU job when one exists)."""
    input:
        arrays="results/nerve/data/train.npz",
        split="results/nerve/data/split.tsv",
    output:
        model="results/nerve/model/model.pt",
        last="results/nerve/model/last.pt",
        decision="results/nerve/model/decision.json",
        log_table=report(
            "results/nerve/model/train_log.tsv",
            caption="../report/train_log.rst",
            category="Nerve",
        ),
        curve=report(
            "results/nerve/model/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Nerve",
        ),
    log:
        "results/logs/nerve_train.log",
    benchmark:
        "results/benchmarks/nerve_train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: NERVE["threads"]
    resources:
        gpu=1,
    params:
        spec=NERVE,
        checkpoints="results/checkpoints/nerve",
    script:
        "../scripts/nerve_train.py"


rule nerve_predict:
    """Masks of the test images, as an img,pixels submission."""
    input:
        model="results/nerve/model/model.pt",
        decision="results/nerve/model/decision.json",
        test=NERVE["test"],
    output:
        "results/nerve/submission.csv",
    log:
        "results/logs/nerve_predict.log",
    benchmark:
        "results/benchmarks/nerve_predict.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: NERVE["threads"]
    resources:
        gpu=1,
    params:
        spec=NERVE,
    script:
        "../scripts/nerve_predict.py"


rule nerve_score:
    """Mean Dice of the submission over the test images (empty vs empty counts 1)."""
    input:
        submission="results/nerve/submission.csv",
        solution=NERVE.get("solution") or [],
        test=NERVE["test"],
    output:
        report(
            "results/nerve/scores.tsv",
            caption="../report/nerve_scores.rst",
            category="Nerve",
        ),
    log:
        "results/logs/nerve_score.log",
    benchmark:
        "results/benchmarks/nerve_score.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/nerve_score.py"


rule nerve_export:
    """The trained nerve model as a folder that loads alone (float16 weights, decision,
    input size, card with validation and test Dice)."""
    input:
        model="results/nerve/model/model.pt",
        decision="results/nerve/model/decision.json",
        log_table="results/nerve/model/train_log.tsv",
        scores="results/nerve/scores.tsv" if NERVE.get("solution") else [],
    output:
        directory("results/nerve/export"),
    log:
        "results/logs/nerve_export.log",
    benchmark:
        "results/benchmarks/nerve_export.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        spec=NERVE,
    script:
        "../scripts/nerve_export.py"
