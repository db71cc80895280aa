"""The data plane: every operation the front ends serve (predict, classify, regress,
multi-inference, metadata, model config, statistics), on the model repository, its versions
and warm-up, the dynamic batcher and the SavedModel runtime."""
