rule predict_shard:
    """Probability maps of one model for one shard of the test images (model loaded once)."""
    input:
        model="results/models/{model}/model.pt",
        manifest="results/test/manifest.tsv",
        normalized="results/test/normalized",
    output:
        "results/predictions/{model}/probabilities-{shard}.npz",
    log:
        "results/logs/predict_shard/{model}-{shard}.log",
    benchmark:
        "results/benchmarks/predict_shard/{model}-{shard}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        shard=lambda wc: int(wc.shard),
        n_shards=len(SHARDS),
        predict=config["predict"],
    script:
        "../scripts/predict_shard.py"
