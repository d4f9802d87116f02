"""SLAVA training: frozen-tower feature cache (`cache`, `features`, `extract`), caption kinds (`captions`), training
tensors (`data`), loop parts (`parts`) and the accelerate loop (`train.pretrain_slava`)."""
