"""Table 2 of LG-CAV-MAE: which image captioner makes the triplets, BLIP-2 or LLaVA-1.5.

VGGSound and Kinetics-700 are captioned by each captioner (and CLAP-scored, so Kinetics' top 30 % differs), then
LG-CAV-MAE is pretrained on VGGSound + Kinetics top 30 % (λ2 = 0.01) and evaluated by retrieval recall@10.

    python -m avt_recipes.table2_captioner --vggsound vggsound.csv --kinetics k700/train --audioset-eval eval.csv --gpus 8
"""

from __future__ import annotations

import sys

from avt_recipes.cli import run_recipes
from avt_recipes.experiments import Plan
from avt_recipes.tables import Table, recall_columns

KEY = "table2"
TITLE = "Table 2: captioner of the triplets (pretrained on VS + K top30, λ2 = 0.01), retrieval R@10 (%)"
CAPTIONERS = {"BLIP-2": "blip2", "LLaVA-1.5": "llava"}


def build(plan: Plan) -> Table:
    rows = [(label, plan.outcome(plan.main_spec(captioner=name))) for label, name in CAPTIONERS.items()]
    return Table(KEY, TITLE, recall_columns((10,)), rows)


if __name__ == "__main__":
    raise SystemExit(run_recipes([sys.modules[__name__]]))
