rule synthesize_sources:
    """Generate the synthetic demo sources in their real layouts: Kaggle stage1 (train, test,
    solution), TCGA/MoNuSeg tif + XML, Cell Tracking Challenge frames."""
    output:
        **synthetic_outputs(),
    log:
        "results/logs/synthesize_sources.log",
    benchmark:
        "results/benchmarks/synthesize_sources.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        synthetic=config.get("synthetic", {}),
    script:
        "../scripts/synthesize_sources.py"


rule convert_source:
    """Read, check and (optionally) crop one raw source once; dataset versions share it."""
    input:
        source_inputs,
    output:
        manifest="results/sources/{source}/manifest.tsv",
        images=directory("results/sources/{source}/images"),
        labels=directory("results/sources/{source}/labels"),
    log:
        "results/logs/convert_source/{source}.log",
    benchmark:
        "results/benchmarks/convert_source/{source}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        name=lambda wc: wc.source,
        spec=lambda wc: config["sources"][wc.source],
    script:
        "../scripts/convert_source.py"


rule assemble_dataset:
    """Gather the converted sources of one dataset version (selection, balancing, hardlinks)."""
    input:
        dataset_inputs,
    output:
        manifest="results/datasets/{version}/manifest.tsv",
        images=directory("results/datasets/{version}/images"),
        labels=directory("results/datasets/{version}/labels"),
    log:
        "results/logs/assemble_dataset/{version}.log",
    benchmark:
        "results/benchmarks/assemble_dataset/{version}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        source_dirs=lambda wc: [
            f"results/sources/{name}"
            for name in config["datasets"][wc.version]["sources"]
        ],
        selection=lambda wc: {
            key: config["datasets"][wc.version].get(key)
            for key in ("include", "exclude", "balance", "shares")
        },
        normalize=lambda wc: version_normalize(wc.version),  # recorded per image
    script:
        "../scripts/assemble_dataset.py"


rule normalize_dataset:
    """Normalise a dataset version's images to nuclei-bright channels in [0, 1]."""
    input:
        manifest="results/datasets/{version}/manifest.tsv",
        images="results/datasets/{version}/images",
    output:
        normalized=directory("results/datasets/{version}/normalized"),
        stats=report(
            "results/datasets/{version}/stats.tsv",
            caption="../report/stats.rst",
            category="Datasets",
            subcategory="{version}",
        ),
    log:
        "results/logs/normalize_dataset/{version}.log",
    benchmark:
        "results/benchmarks/normalize_dataset/{version}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        normalize=lambda wc: version_normalize(wc.version),
    script:
        "../scripts/normalize_dataset.py"


rule compute_targets:
    """Semantic, contour, marker and weight targets of a dataset version, computed once."""
    input:
        manifest="results/datasets/{version}/manifest.tsv",
        labels="results/datasets/{version}/labels",
    output:
        directory("results/datasets/{version}/targets"),
    log:
        "results/logs/compute_targets/{version}.log",
    benchmark:
        "results/benchmarks/compute_targets/{version}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        targets=config.get("targets", {}),
    script:
        "../scripts/compute_targets.py"


rule prepare_test_set:
    """Normalise the test images (Kaggle stage1_test layout, one or more named sets) and list them."""
    input:
        images=list(TEST_SETS.values()),
    output:
        manifest="results/test/manifest.tsv",
        normalized=directory("results/test/normalized"),
    log:
        "results/logs/prepare_test_set.log",
    benchmark:
        "results/benchmarks/prepare_test_set.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        normalize=config["normalize"],
        test_sets=TEST_SETS,
    script:
        "../scripts/prepare_test_set.py"


rule materialize_fold:
    """Hardlink one fold of a dataset version into train/ and valid/ (grouped by origin)."""
    input:
        manifest="results/datasets/{version}/manifest.tsv",
        images="results/datasets/{version}/images",
        labels="results/datasets/{version}/labels",
        normalized="results/datasets/{version}/normalized",
        targets="results/datasets/{version}/targets",
    output:
        directory("results/datasets/{version}/folds/{fold}"),
    log:
        "results/logs/materialize_fold/{version}-{fold}.log",
    benchmark:
        "results/benchmarks/materialize_fold/{version}-{fold}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        cv=lambda wc: config["datasets"][wc.version]["cv"],
        fold=lambda wc: int(wc.fold),
    script:
        "../scripts/materialize_fold.py"
