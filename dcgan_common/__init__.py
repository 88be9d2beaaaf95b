"""What every stage shares: the typed config and presets, feature and batch keys, image
helpers, the on-disk layout (serving versions, run directories), reading transformed examples,
the classifier's embedding and the quality metrics.

A leaf: it imports nothing else of the project, so trainer/, components/, serving/ and
pipeline/ can all depend on it without depending on each other.
"""
