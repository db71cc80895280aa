"""YAML read safely and within bounds: no Python objects (``yaml.SafeLoader``), and no alias bomb.

YAML's anchors and aliases let a few hundred bytes stand for billions of values (nine aliases of
nine aliases of ...): the parsed object shares them, but anything that walks it, an error message
formatting the value say, expands them. The document's size with every alias expanded is counted
on the composed node graph, before any Python value is built, and a document over
``MAX_EXPANDED_NODES`` (or one that refers to itself) is refused.
"""

import re

import yaml

MAX_EXPANDED_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a number, as YAML 1.2 and JSON do (YAML 1.1 wants
    a dot in the mantissa: ``1.0e-3``), so a config says ``lr: 1e-3`` as a flag does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class YamlError(ValueError):
    """Text that is not YAML, or YAML that expands beyond the bound."""


def _expanded_size(node, sizes: dict, path: set) -> int:
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in path:
        raise YamlError("an alias refers to a node that contains it (a recursive document)")
    path.add(id(node))
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    size = 1
    for child in children:
        size += _expanded_size(child, sizes, path)
        if size > MAX_EXPANDED_NODES:
            break
    path.discard(id(node))
    sizes[id(node)] = size
    return size


def load(text: str):
    """The value of a YAML document; YamlError when it is not YAML or expands, aliases followed,
    to more than ``MAX_EXPANDED_NODES`` values."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_EXPANDED_NODES:
            raise YamlError(
                f"it expands, aliases followed, to more than {MAX_EXPANDED_NODES:,} values"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise YamlError(str(error)) from None
    finally:
        loader.dispose()
