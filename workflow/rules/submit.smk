rule write_submission:
    """Kaggle submission CSV (RLE per nucleus) of one ensemble, validated after writing."""
    input:
        instances=expand(
            "results/ensembles/{{ensemble}}/instances-{shard}.npz", shard=SHARDS
        ),
        manifest="results/test/manifest.tsv",
    output:
        "results/submissions/{ensemble}.csv",
    log:
        "results/logs/write_submission/{ensemble}.log",
    benchmark:
        "results/benchmarks/write_submission/{ensemble}.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/write_submission.py"


rule final_submission:
    """Copy the final ensemble's submission to results/submission.csv (after scoring it when
    a solution is configured, drawing its overlays, measuring its nuclei and recording the
    run, so that one target runs the whole DAG)."""
    input:
        submission=f"results/submissions/{config['submission']}.csv",
        scores="results/scores.tsv" if SOLUTIONS else [],
        validation_scores=(
            "results/validation_scores.tsv" if config["postprocess"]["tune"] else []
        ),
        overlays=f"results/overlays/{config['submission']}",
        measurements=f"results/measurements/{config['submission']}.csv",
        run_manifest="results/run_manifest.json",
        benchmarks="results/benchmarks.tsv",
        pages=["results/report/datasets.html"]
        + (["results/report/scores.html"] if SOLUTIONS else []),
    output:
        "results/submission.csv",
    log:
        "results/logs/final_submission.log",
    benchmark:
        "results/benchmarks/final_submission.tsv"
    localrule: True
    conda:
        "../../envs/data.yaml"
    shell:
        "cp {input.submission:q} {output:q} 2> {log:q}"


rule score_submissions:
    """Per-image and mean scores of every model's and ensemble's submission against the solution."""
    input:
        submissions=expand("results/submissions/{ensemble}.csv", ensemble=ENTRIES),
        solution=SOLUTIONS,
        manifest="results/test/manifest.tsv",
    output:
        report("results/scores.tsv", caption="../report/scores.rst", category="Scores"),
    log:
        "results/logs/score_submissions.log",
    benchmark:
        "results/benchmarks/score_submissions.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        ensembles=list(ENTRIES),
    script:
        "../scripts/score_submissions.py"


rule overlays:
    """Outline overlays (prediction vs truth) of a few test images per category."""
    input:
        instances=expand(
            "results/ensembles/{{ensemble}}/instances-{shard}.npz", shard=SHARDS
        ),
        manifest="results/test/manifest.tsv",
        normalized="results/test/normalized",
        solution=SOLUTIONS,
    output:
        report(
            directory("results/overlays/{ensemble}"),
            patterns=["{category,[a-z]+}-{score,[a-z0-9.]+}-{image}.png"],
            caption="../report/overlays.rst",
            category="Overlays",
            subcategory="{ensemble}",
            labels={"category": "{category}", "image": "{image}", "score": "{score}"},
        ),
    log:
        "results/logs/overlays/{ensemble}.log",
    benchmark:
        "results/benchmarks/overlays/{ensemble}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        per_category=2,
    script:
        "../scripts/write_overlays.py"


rule measure_nuclei:
    """Per-nucleus measurements and per-image summary of one model's or ensemble's test
    instances (area, centroid, box, diameter, shape, intensity of the original image).
    """
    input:
        instances=expand(
            "results/ensembles/{{ensemble}}/instances-{shard}.npz", shard=SHARDS
        ),
        images=list(TEST_SETS.values()),
    output:
        measurements=report(
            "results/measurements/{ensemble}.csv",
            caption="../report/measurements.rst",
            category="Measurements",
        ),
        summary="results/measurements/{ensemble}-summary.csv",
    log:
        "results/logs/measure_nuclei/{ensemble}.log",
    benchmark:
        "results/benchmarks/measure_nuclei/{ensemble}.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/measure_nuclei.py"


rule scores_page:
    """The test scores as an HTML table (best per column marked) and a chart of the DSB
    score per category of every model and ensemble, for the report."""
    input:
        "results/scores.tsv",
    output:
        page=report(
            "results/report/scores.html",
            caption="../report/scores_page.rst",
            category="Scores",
            labels={"page": "test scores"},
        ),
        chart=report(
            "results/report/dsb_by_category.png",
            caption="../report/dsb_chart.rst",
            category="Scores",
            labels={"page": "DSB per category"},
        ),
    log:
        "results/logs/scores_page.log",
    conda:
        "../../envs/data.yaml"
    params:
        test_sets=TEST_SETS,
    script:
        "../scripts/scores_page.py"


rule tables_page:
    """Validation scores, dataset statistics and job benchmarks as HTML tables."""
    input:
        validation=(
            "results/validation_scores.tsv" if config["postprocess"]["tune"] else []
        ),
        stats=expand("results/datasets/{version}/stats.tsv", version=TRAINED_VERSIONS),
        benchmarks="results/benchmarks.tsv",
        run_manifest="results/run_manifest.json",
    output:
        provenance=report(
            "results/report/provenance.html",
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"page": "this run"},
        ),
        validation=report(
            "results/report/validation_scores.html",
            caption="../report/validation_scores.rst",
            category="Scores",
            labels={"page": "validation scores"},
        ),
        datasets=report(
            "results/report/datasets.html",
            caption="../report/stats.rst",
            category="Datasets",
            labels={"page": "statistics per version"},
        ),
        benchmarks=report(
            "results/report/benchmarks.html",
            caption="../report/benchmarks.rst",
            category="Benchmarks",
            labels={"page": "every job"},
        ),
    log:
        "results/logs/tables_page.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        versions=TRAINED_VERSIONS,
    script:
        "../scripts/tables_page.py"


rule run_manifest:
    """Config hash, code version, package versions and dataset hashes of this run."""
    input:
        datasets=expand(
            "results/datasets/{version}/manifest.tsv", version=TRAINED_VERSIONS
        ),
        pretrained=[str(Path(folder) / "model.pt") for folder in PRETRAINED.values()],
        submission=f"results/submissions/{config['submission']}.csv",
    output:
        "results/run_manifest.json",
    log:
        "results/logs/run_manifest.log",
    benchmark:
        "results/benchmarks/run_manifest.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        versions=TRAINED_VERSIONS,
        pretrained=list(PRETRAINED),
        code=workflow.basedir,
    script:
        "../scripts/run_manifest.py"


rule benchmark_table:
    """Every job's time, memory and I/O (the `benchmark:` files under results/benchmarks/)
    in one report table."""
    input:
        submissions=expand("results/submissions/{ensemble}.csv", ensemble=ENTRIES),
        overlays=f"results/overlays/{config['submission']}",
        measurements=f"results/measurements/{config['submission']}.csv",
        run_manifest="results/run_manifest.json",
        scores="results/scores.tsv" if SOLUTIONS else [],
    output:
        report(
            "results/benchmarks.tsv",
            caption="../report/benchmarks.rst",
            category="Benchmarks",
        ),
    log:
        "results/logs/benchmark_table.log",
    benchmark:
        "results/benchmarks/benchmark_table.tsv"
    localrule: True
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/benchmark_table.py"
