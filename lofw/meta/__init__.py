"""Meta-training: the run config, the loop (one compiled meta-step), the outer optimizer and checkpoints.

Use it through the face: :func:`lofw.meta_train`, :class:`lofw.MetaTrainConfig`.
"""
