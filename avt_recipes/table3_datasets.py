"""Table 3 of LG-CAV-MAE: pretraining data, VGGSound (VS), Kinetics-700 (K) or both, with K's top k % by CLAP score.

Rows: VS; K top k %; VS + K top k %, for k in 10, 30, 50 and 100 (every clip: no filtering). BLIP-2 captions,
λ2 = 0.01; retrieval recall@10 on VGGSound test and AudioSet eval.

    python -m avt_recipes.table3_datasets --vggsound vggsound.csv --kinetics k700/train --audioset-eval eval.csv --gpus 8
"""

from __future__ import annotations

import sys

from avt_recipes.cli import run_recipes
from avt_recipes.experiments import Plan, data_parts
from avt_recipes.tables import Table, recall_columns

KEY = "table3"
TITLE = (
    "Table 3: pretraining data, VGGSound (VS) and Kinetics-700 (K) top-k % by CLAP score, retrieval R@10 (%)"
)


def build(plan: Plan) -> Table:
    specs = [plan.main_spec(parts=data_parts(True, None))]
    for with_vggsound in (False, True):
        specs += [plan.main_spec(parts=data_parts(with_vggsound, k)) for k in plan.settings.top_k]
    return Table(KEY, TITLE, recall_columns((10,)), [(spec.data_label, plan.outcome(spec)) for spec in specs])


if __name__ == "__main__":
    raise SystemExit(run_recipes([sys.modules[__name__]]))
