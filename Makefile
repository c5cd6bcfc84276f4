# Pictures of the workflow for docs/ and the README (needs Graphviz's `dot`: apt-get install graphviz).
SNAKEMAKE ?= .venv/bin/snakemake
TARGET ?= results/submission.csv
TASKS ?= $(TARGET) results/export/shipped_tuned results/nerve/scores.tsv results/nerve/export results/tissue/scores.tsv

.PHONY: docs
docs: docs/rulegraph.svg docs/dag.svg

# the rules of all three tasks and how they depend on each other
docs/rulegraph.svg: Snakefile config.yaml $(wildcard workflow/rules/*.smk)
	$(SNAKEMAKE) --rulegraph --forceall $(TASKS) | dot -Tsvg > $@.tmp && mv $@.tmp $@

# every job of the nuclei demo
docs/dag.svg: Snakefile config.yaml $(wildcard workflow/rules/*.smk)
	$(SNAKEMAKE) --dag --forceall $(TARGET) | dot -Tsvg > $@.tmp && mv $@.tmp $@
