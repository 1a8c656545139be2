"""The contracts a plugin implements: one abstract class per component kind.

``kinds.INTERFACES`` maps each kind name to its interface; ``plugins/<kind>/``
holds lofw's own implementations of each. Use them through the face
(``lofw.AbstractFeatures``, ``lofw.Batch``, ...).
"""
