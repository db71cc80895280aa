"""What each dataset is: task, input shape, class names and split sizes (no data is read here)."""

from dataclasses import dataclass, field

from core.outputs import MULTICLASS, MULTILABEL

# What the training pipeline can do to each batch (training.datasets.pipeline.augment).
AUGMENTATIONS = ("none", "shift", "flip_shift")
DIGITS = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES = tuple(
    """
    apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
    butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
    crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house
    kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle
    mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree
    plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark
    shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
    tank telephone television tiger tractor train trout tulip turtle wardrobe whale
    willow_tree wolf woman worm
    """.split()
)


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one dataset.

    Args:
        name: the name users pass to ``--dataset``.
        task: ``"multiclass"`` (one label per image) or ``"multilabel"`` (a multi-hot target).
        input_shape: the shape of one image, HWC.
        class_names: one name per class, in label order.
        split_sizes: number of examples in each split.
        base: for generated datasets, the dataset their images are drawn from; else ``None``.
        description: one line for ``zoo datasets``.
    """

    name: str
    task: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    split_sizes: dict[str, int] = field(hash=False)
    base: str | None = None
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_json(cls, data: dict) -> "DatasetInfo":
        """The inverse of :meth:`to_json`."""
        return cls(data["name"], data["task"], tuple(data["input_shape"]),
                   tuple(data["class_names"]), dict(data["split_sizes"]))  # fmt: skip

    def to_json(self) -> dict:
        """A JSON-ready dict, as saved in run directories and exported model metadata."""
        return {
            "name": self.name,
            "task": self.task,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "split_sizes": dict(self.split_sizes),
        }


CATALOG: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("mnist", MULTICLASS, (28, 28, 1), DIGITS, {"train": 60000, "test": 10000},
                    description="Handwritten digits (LeCun et al.)"),
        DatasetInfo("fashion_mnist", MULTICLASS, (28, 28, 1), FASHION_MNIST_CLASSES,
                    {"train": 60000, "test": 10000}, description="Zalando article images"),
        DatasetInfo("cifar10", MULTICLASS, (32, 32, 3), CIFAR10_CLASSES,
                    {"train": 50000, "test": 10000}, description="Tiny colour images, 10 classes"),
        DatasetInfo("cifar100", MULTICLASS, (32, 32, 3), CIFAR100_CLASSES,
                    {"train": 50000, "test": 10000}, description="Tiny colour images, 100 classes"),
        DatasetInfo("mnist_multilabel", MULTILABEL, (56, 56, 1), DIGITS,
                    {"train": 60000, "test": 10000}, base="mnist",
                    description="1-3 MNIST digits on a 56x56 canvas; multi-hot digits present"),
        DatasetInfo("cifar10_multilabel", MULTILABEL, (64, 64, 3), CIFAR10_CLASSES,
                    {"train": 50000, "test": 10000}, base="cifar10",
                    description="2x2 mosaic of 1-4 CIFAR-10 images; multi-hot classes present"),
    )
}  # fmt: skip
