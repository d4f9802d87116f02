"""The CAV-MAE baseline row: the same model, data and recipe as LG-CAV-MAE with the text losses off (λ2 = 0).

Pretrained on VGGSound + Kinetics-700 top 30 % like the LG-CAV-MAE rows it is compared with, then evaluated by
retrieval recall@10 and by fine-tuning on VGGSound and AudioSet-20K. Tables 1, 5 and 6 print this row too (same
steps, run once per work directory).

    python -m avt_recipes.cavmae_baseline --vggsound vggsound.csv --kinetics k700/train --audioset-train bal.csv \\
        --audioset-eval eval.csv --audioset-labels class_labels_indices.csv --gpus 8
"""

from __future__ import annotations

import sys

from avt_recipes.cli import run_recipes
from avt_recipes.experiments import TASKS, Plan
from avt_recipes.tables import CLASSIFICATION_COLUMNS, Table, recall_columns

KEY = "cavmae"
TITLE = "CAV-MAE baseline (λ2 = 0, pretrained on VS + K top30): retrieval R@10 and classification (%)"


def build(plan: Plan) -> Table:
    outcome = plan.outcome(plan.main_spec(lambda2=0.0), tasks=tuple(TASKS))
    return Table(KEY, TITLE, [*recall_columns((10,)), *CLASSIFICATION_COLUMNS], [("CAV-MAE", outcome)])


if __name__ == "__main__":
    raise SystemExit(run_recipes([sys.modules[__name__]]))
