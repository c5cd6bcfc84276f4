"""nucseg: nucleus instance segmentation, from raw sources to a Kaggle DSB2018 submission."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/postprocess.smk"
include: "workflow/rules/submit.smk"


if "nerve" in config:

    include: "workflow/rules/nerve.smk"


if "tissue" in config:

    include: "workflow/rules/tissue.smk"


rule all:
    input:
        all_outputs(),
