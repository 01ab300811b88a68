"""Pytrees: flatten and unflatten round trips, a fixed leaf order, tree_map, readable paths."""
from collections import namedtuple

import numpy as np
import pytest

from chainrule.modes.pytree import describe, flatten, leaf_paths, num_leaves, tree_map, unflatten

Pair = namedtuple("Pair", "first second")


def test_a_single_leaf_is_its_own_tree():
    x = np.ones(3)
    leaves, treedef = flatten(x)
    assert leaves[0] is x and treedef is None
    assert unflatten(treedef, [5.0]) == 5.0
    assert flatten(None)[0] == [None]  # None is a leaf (the API then says it is not an array)


def test_round_trip_of_nested_containers():
    tree = {"b": [1.0, (2.0, 3.0)], "a": {"x": 4.0}, "c": Pair(5.0, [6.0])}
    leaves, treedef = flatten(tree)
    assert leaves == [4.0, 1.0, 2.0, 3.0, 5.0, 6.0]  # dict keys sorted: a, b, c
    rebuilt = unflatten(treedef, leaves)
    assert rebuilt == tree and isinstance(rebuilt["c"], Pair) and isinstance(rebuilt["b"][1], tuple)
    assert num_leaves(treedef) == 6


def test_dicts_with_the_same_keys_flatten_alike_whatever_their_order():
    a = {"W": 1.0, "b": 2.0}
    b = {"b": 20.0, "W": 10.0}
    (la, da), (lb, db) = flatten(a), flatten(b)
    assert da == db and la == [1.0, 2.0] and lb == [10.0, 20.0]
    assert flatten([1.0, 2.0])[1] != flatten((1.0, 2.0))[1]  # a list is not a tuple


def test_tree_map_over_several_trees():
    assert tree_map(lambda a, b: a * b, {"x": 2.0, "y": [3.0]}, {"x": 10.0, "y": [100.0]}) == {"x": 20.0, "y": [300.0]}
    with pytest.raises(ValueError, match=r"tree_map: tree 1 is a list of 2 but tree 0 is a list of 1"):
        tree_map(lambda a, b: a, [1.0], [1.0, 2.0])


def test_paths_and_descriptions_for_error_messages():
    _, treedef = flatten({"W": [1.0, 2.0], "b": 3.0})
    assert leaf_paths(treedef) == ["['W'][0]", "['W'][1]", "['b']"]
    assert describe(treedef) == "a dict with keys ['W', 'b']"
    assert describe(flatten((1, 2))[1]) == "a tuple of 2"
    assert describe(None) == "a leaf (one array or number)"


def test_mixed_key_types_keep_insertion_order():
    leaves, treedef = flatten({2: "two", "a": "A"})
    assert leaves == ["two", "A"]
    assert unflatten(treedef, leaves) == {2: "two", "a": "A"}
