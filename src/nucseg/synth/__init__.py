"""Seeded generators of annotated images for every task, for tests, demos and the formats
no open real data covers: nuclei in the Kaggle DSB2018, MoNuSeg and Cell Tracking Challenge
layouts (:mod:`~nucseg.synth.nuclei`), ultrasound nerve images in the Kaggle 2016 layout
(:mod:`~nucseg.synth.ultrasound`) and H&E tissue tiles with class maps
(:mod:`~nucseg.synth.tissue`), on shared noise helpers (:mod:`~nucseg.synth.noise`)."""
