"""Table 4 of LG-CAV-MAE: Kinetics' top 30 % by CLAP score against a random 30 % of the same size.

Both pretrain on VGGSound + 30 % of Kinetics-700 (BLIP-2 captions, λ2 = 0.01); retrieval recall@10.

    python -m avt_recipes.table4_random --vggsound vggsound.csv --kinetics k700/train --audioset-eval eval.csv --gpus 8
"""

from __future__ import annotations

import sys

from avt_recipes.cli import run_recipes
from avt_recipes.experiments import Plan
from avt_recipes.tables import Table, recall_columns

KEY = "table4"
TITLE = (
    "Table 4: CLAP-filtered top 30 % vs random 30 % of Kinetics (pretrained on VS + K), retrieval R@10 (%)"
)


def build(plan: Plan) -> Table:
    k = plan.settings.main_k
    specs = [
        plan.main_spec(parts=(("vggsound-train", None), ("kinetics", f"{kind}{k}")))
        for kind in ("random", "top")
    ]
    return Table(KEY, TITLE, recall_columns((10,)), [(spec.data_label, plan.outcome(spec)) for spec in specs])


if __name__ == "__main__":
    raise SystemExit(run_recipes([sys.modules[__name__]]))
