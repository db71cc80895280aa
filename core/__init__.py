"""The shared core: what every part of the zoo agrees on, importing none of them.

- ``core.errors``: the errors a user can fix (the CLI prints them in one line, exit code 2);
- ``core.outputs``: what a classifier's outputs mean (tasks, the decision rule, confusion matrix);
- ``core.images``: image files and tf.Example features as uint8 pixel arrays;
- ``core.artifact``: the export format (repository layout, signature spec, ``zoo.json`` schema).

Training writes artifacts through it, the server reads them through it; nothing here imports
TensorFlow, Keras, the model zoo, training, serving or the CLI (an import contract checks it).
"""

__version__ = "0.1.0"
