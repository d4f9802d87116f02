"""The LG-CAV-MAE paper's tables as runnable recipes (docs/reproduce.md).

``python -m recipes.table5_retrieval --vggsound ... --gpus 8`` runs one table; ``python -m recipes all ...`` runs
every table over one work directory (shared steps run once). ``--tiny`` runs them offline on synthetic clips.
"""

RECIPES = {
    "table1": "recipes.table1_lambda2",
    "table2": "recipes.table2_captioner",
    "table3": "recipes.table3_datasets",
    "table4": "recipes.table4_random",
    "table5": "recipes.table5_retrieval",
    "table6": "recipes.table6_classification",
    "cavmae": "recipes.cavmae_baseline",
}

__all__ = ["RECIPES"]
