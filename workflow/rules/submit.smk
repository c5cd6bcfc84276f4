rule write_submission:
    """Kaggle submission CSV (RLE per nucleus) of one ensemble, validated after writing."""
    input:
        instances=expand("results/ensembles/{{ensemble}}/instances-{shard}.npz", shard=SHARDS),
        manifest="results/test/manifest.tsv",
    output:
        "results/submissions/{ensemble}.csv",
    log:
        "results/logs/write_submission/{ensemble}.log",
    benchmark:
        "results/benchmarks/write_submission/{ensemble}.tsv"
    script:
        "../scripts/write_submission.py"


rule final_submission:
    """Copy the configured final ensemble's submission to results/submission.csv."""
    input:
        f"results/submissions/{config['submission']}.csv",
    output:
        "results/submission.csv",
    log:
        "results/logs/final_submission.log",
    benchmark:
        "results/benchmarks/final_submission.tsv"
    shell:
        "cp {input:q} {output:q} 2> {log:q}"


rule score_submissions:
    """Per-image and mean DSB score of every ensemble's submission against the solution."""
    input:
        submissions=expand("results/submissions/{ensemble}.csv", ensemble=config["ensembles"]),
        solution=config["solution"] or [],
        manifest="results/test/manifest.tsv",
    output:
        "results/scores.tsv",
    params:
        ensembles=list(config["ensembles"]),
    log:
        "results/logs/score_submissions.log",
    benchmark:
        "results/benchmarks/score_submissions.tsv"
    script:
        "../scripts/score_submissions.py"
