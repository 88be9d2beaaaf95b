"""bench/cluster_purity.py's arithmetic: the cluster-by-digit table and its purity."""

import numpy as np

from bench.cluster_purity import contingency, purity


def test_the_table_counts_each_digit_per_group_and_purity_is_the_commonest_share():
    groups = np.array([0, 0, 0, 1, 1, 2])
    digits = np.array([3, 3, 5, 7, 7, 9])
    table = contingency(groups, digits, 3)
    assert table.shape == (3, 10) and table.sum() == 6
    assert table[0, 3] == 2 and table[0, 5] == 1 and table[1, 7] == 2 and table[2, 9] == 1
    assert purity(table) == 5 / 6  # 2 of group 0's 3, all of groups 1 and 2.


def test_purity_is_one_for_clusters_that_are_digits_and_a_tenth_for_blind_ones():
    digits = np.repeat(np.arange(10), 100)
    assert purity(contingency(digits, digits, 10)) == 1.0
    blind = np.tile(np.arange(10), 100)  # Every cluster holds every digit equally.
    assert purity(contingency(blind, digits, 10)) == 0.1
