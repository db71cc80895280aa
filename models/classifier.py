"""``Classifier``: a functional Keras model that knows its head.

Every model :func:`models.create_model` builds is a ``Classifier``. It carries its head through
saving and loading (``model.head``), and ``compile`` defaults to the head's own loss (``loss=
"auto"``, as keras-hub's task models do); a cross-entropy that expects another output than the
head gives is refused with a message naming both.
"""

import keras

from models.heads import Head, get_head


@keras.saving.register_keras_serializable(package="zoo")
class Classifier(keras.Model):
    """A functional model ``Classifier(inputs, outputs, head=..., name=...)``.

    Args:
        head: the head its outputs come from: a name from ``models.HEADS`` or a ``Head``.
        *args, **kwargs: those of a functional ``keras.Model`` (inputs, outputs, name, ...).
    """

    def __init__(self, *args, **kwargs):
        # *args/**kwargs keep Keras' functional (de)serialization, which needs that signature;
        # Keras revives the graph without the head, and from_config sets it right after.
        head = kwargs.pop("head", None)
        super().__init__(*args, **kwargs)
        self.head: Head | None = None if head is None else get_head(head)

    def compile(self, optimizer="rmsprop", loss="auto", **kwargs):
        """Keras' ``compile``; ``loss="auto"`` (the default) is the head's loss.

        Raises:
            ValueError: when ``loss`` is a cross-entropy for another output than the head's.
        """
        if isinstance(loss, str) and loss == "auto":
            loss = self.head.loss()
        elif loss is not None:
            self.head.check_loss(loss)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded model (Keras skips models whose ``compile`` is overridden), so a
        checkpoint resumes with its loss, metrics and optimizer state."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        return {**super().get_config(), "head": self.head.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        head = config.pop("head")
        model = super().from_config(config, custom_objects)
        model.head = get_head(head)
        return model
