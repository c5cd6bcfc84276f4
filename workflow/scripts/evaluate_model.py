"""Score one trained model on the evaluation sets (never trained on)."""

from nucseg.evaluation import EvaluationSet, evaluate_model, summarize_evaluation
from nucseg.io.tables import write_table
from nucseg.postprocess import read_thresholds
from nucseg.predict import PredictConfig
from nucseg.scripting import run_script


def main(snakemake):
    sets = [EvaluationSet.from_config(n, s) for n, s in snakemake.params.sets.items()]
    per_image = evaluate_model(
        snakemake.input.model,
        read_thresholds(snakemake.input.thresholds),
        sets,
        PredictConfig.from_config(snakemake.params.predict),
        threads=snakemake.threads,
    )
    write_table(per_image, snakemake.output.per_image)
    write_table(summarize_evaluation(per_image), snakemake.output.summary)


run_script(main, snakemake)  # noqa: F821
