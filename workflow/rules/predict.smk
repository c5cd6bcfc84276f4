rule predict_shard:
    """Probability maps of one model for one shard of the test images (model loaded once)."""
    input:
        model="results/models/{model}/model.pt",
        manifest="results/test/manifest.tsv",
        normalized="results/test/normalized",
    output:
        "results/predictions/{model}/probabilities-{shard}.npz",
    params:
        shard=lambda wc: int(wc.shard),
        n_shards=len(SHARDS),
        tta_views=config["predict"]["tta_views"],
    threads: 1
    resources:
        gpu=1,
    log:
        "results/logs/predict_shard/{model}-{shard}.log",
    benchmark:
        "results/benchmarks/predict_shard/{model}-{shard}.tsv"
    script:
        "../scripts/predict_shard.py"
