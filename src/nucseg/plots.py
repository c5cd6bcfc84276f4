"""Figures for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
import pandas as pd  # noqa: E402

from nucseg.io.atomic import atomic_path  # noqa: E402


def plot_learning_curve(table: pd.DataFrame, path: Path | str) -> None:
    """Two panels from an epoch log (:func:`nucseg.train.log_columns`): training loss per
    head and validation loss; validation DSB score and learning rate."""
    fig, (losses, score) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for column in [c for c in table.columns if c.startswith("loss_")] + ["train_loss"]:
        losses.plot(table.epoch, table[column], label=column.removeprefix("loss_"))
    losses.plot(table.epoch, table.valid_loss, "k--", label="validation")
    losses.set(xlabel="epoch", ylabel="loss", title="loss")
    losses.legend(fontsize="small")
    score.plot(table.epoch, table.valid_dsb, "o-", color="tab:green")
    score.set(xlabel="epoch", ylabel="validation DSB score", title="score and learning rate")
    rate = score.twinx()
    rate.step(table.epoch, table.lr, where="post", color="tab:grey")
    rate.set(ylabel="learning rate", yscale="log")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, metadata={"Software": None})
    plt.close(fig)
