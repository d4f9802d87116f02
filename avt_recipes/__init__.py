"""The LG-CAV-MAE paper's tables as runnable recipes (docs/reproduce.md).

``python -m avt_recipes.table5_retrieval --vggsound ... --gpus 8`` runs one table; ``python -m avt_recipes all ...`` runs
every table over one work directory (shared steps run once). ``--tiny`` runs them offline on synthetic clips.
"""

RECIPES = {
    "table1": "avt_recipes.table1_lambda2",
    "table2": "avt_recipes.table2_captioner",
    "table3": "avt_recipes.table3_datasets",
    "table4": "avt_recipes.table4_random",
    "table5": "avt_recipes.table5_retrieval",
    "table6": "avt_recipes.table6_classification",
    "cavmae": "avt_recipes.cavmae_baseline",
}

__all__ = ["RECIPES"]
