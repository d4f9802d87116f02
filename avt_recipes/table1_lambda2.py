"""Table 1 of LG-CAV-MAE: the weight λ2 of the audio-text and visual-text losses.

One pretraining per λ2 on the paper's best data (VGGSound + Kinetics-700 top 30 %, BLIP-2 captions; λ2 = 0 is
CAV-MAE on the same data), each evaluated by audio-visual retrieval recall@10 on VGGSound test and AudioSet eval.

    python -m avt_recipes.table1_lambda2 --vggsound vggsound.csv --kinetics k700/train --audioset-eval eval.csv --gpus 8
"""

from __future__ import annotations

import sys

from avt_recipes.cli import run_recipes
from avt_recipes.experiments import Plan
from avt_recipes.tables import Table, recall_columns

KEY = "table1"
TITLE = "Table 1: weight λ2 of the text losses (pretrained on VS + K top30), retrieval R@10 (%)"


def build(plan: Plan) -> Table:
    rows = [
        (
            f"λ2 = {weight:g}" + (" (CAV-MAE)" if weight == 0 else ""),
            plan.outcome(plan.main_spec(lambda2=weight)),
        )
        for weight in plan.settings.lambda2_sweep
    ]
    return Table(KEY, TITLE, recall_columns((10,)), rows)


if __name__ == "__main__":
    raise SystemExit(run_recipes([sys.modules[__name__]]))
