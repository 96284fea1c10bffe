"""Continual pretraining (FSDP2) over the corpus stage's token shards: `torchrun -m training RECIPE`."""
