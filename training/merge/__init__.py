"""Model merging after continual pretraining (`make merge`): mergekit's methods, streamed tensor by tensor.

Kept free of imports: `config.MergeRecipe` is a recipe view every stage loads, without torch."""
