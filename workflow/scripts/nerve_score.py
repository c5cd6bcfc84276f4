"""Mean Dice of the nerve submission against the test masks."""

from nucseg.errors import NucsegInputError
from nucseg.io.tables import write_table
from nucseg.nerve import read_nerve_submission, score_nerve, shapes_of_test_images
from nucseg.scripting import run_script


def main(snakemake):
    if not snakemake.input.get("solution"):
        raise NucsegInputError("nerve.solution is null: there are no test masks to score against")
    shapes = shapes_of_test_images(snakemake.input.test)
    truth = read_nerve_submission(snakemake.input.solution, shapes)
    predicted = read_nerve_submission(snakemake.input.submission, shapes)
    write_table(score_nerve(truth, predicted), snakemake.output[0])


run_script(main, snakemake)  # noqa: F821
