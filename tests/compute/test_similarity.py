"""Similarity: KS statistic and lambda, thinning, fingerprints, set comparison, search, science checks."""

import numpy as np
import pytest
from scipy.stats import chisquare, ks_2samp
from shapely.geometry import box

from compute import similarity
from compute.similarity import (C_ALPHA_05, Fingerprints, compare_sets, file_fingerprints,
                                        ks_statistic, lambda_matrix, lambda_value, search_bank,
                                        self_similarity, summarise, thin_indices)
from compute.simulate import simulate_clustered, simulate_csr
from compute.tiles import TileGrid, grid_tiles, points_in_tiles, tile_count_histogram


def poisson_hist(rng, mean, n_bins=10_000):
    """bincount of Poisson per-bin counts, optionally overdispersed (gamma-mixed) for clustered-like tiles."""
    rates = rng.gamma(0.5, 2 * mean, n_bins) if rng.random() < 0.5 else np.full(n_bins, mean)
    return np.bincount(rng.poisson(rates))


def random_fingerprints(rng, n_tiles, n_bins=10_000):
    hists = [poisson_hist(rng, rng.uniform(0.05, 3.0), n_bins) for _ in range(n_tiles)]
    return Fingerprints.from_histograms(hists, np.ones(n_tiles, dtype=np.int64))


def expand(hist):
    """The per-bin count sample behind a bincount vector."""
    return np.repeat(np.arange(len(hist)), hist)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(2024)


# ---- KS statistic and lambda ------------------------------------------------------------------

@pytest.mark.parametrize("n_bins_b", [10_000, 2_500])
def test_d_and_lambda_match_scipy_ks_2samp(rng, n_bins_b):
    for _ in range(20):
        a, b = poisson_hist(rng, rng.uniform(0.1, 2)), poisson_hist(rng, rng.uniform(0.1, 2), n_bins_b)
        reference = ks_2samp(expand(a), expand(b)).statistic
        n, m = a.sum(), b.sum()
        assert abs(ks_statistic(a, b) - reference) < 1e-12
        assert abs(lambda_value(a, b) - reference / (C_ALPHA_05 * np.sqrt((n + m) / (n * m)))) < 1e-12
        assert abs(lambda_value(a, b, mode="kolmogorov") - np.sqrt(n * m / (n + m)) * reference) < 1e-12


def test_d_attained_where_the_shorter_support_ends():
    sparse = np.array([5000, 5000])             # counts 0 and 1 only: CDF reaches 1 at v = 1
    dense = np.array([5000, 0, 0, 5000])        # CDF stays at 0.5 until v = 3
    assert ks_statistic(sparse, dense) == ks_2samp(expand(sparse), expand(dense)).statistic == 0.5
    assert lambda_matrix(Fingerprints.from_histograms([sparse], [1]),
                         Fingerprints.from_histograms([dense], [1]))[0, 0] == lambda_value(sparse, dense) > 0


def test_empty_tile_gives_nan(rng):
    a, empty = poisson_hist(rng, 0.5), np.zeros(3, dtype=np.int64)
    assert np.isnan(lambda_value(a, empty)) and np.isnan(lambda_value(empty, a, mode="kolmogorov"))
    assert np.isnan(ks_statistic(empty, a))


def test_lambda_is_zero_for_identical_tiles_and_symmetric(rng):
    a, b = poisson_hist(rng, 0.8), poisson_hist(rng, 1.1)
    assert lambda_value(a, a) == 0.0
    assert lambda_value(a, np.concatenate((a, [0, 0]))) == 0.0
    assert lambda_value(a, b) == lambda_value(b, a) > 0


def test_kolmogorov_mode_is_c_alpha_times_critical_mode(rng):
    a, b = poisson_hist(rng, 0.5), poisson_hist(rng, 0.7)
    assert C_ALPHA_05 == pytest.approx(1.3581, abs=1e-4)
    assert lambda_value(a, b, mode="kolmogorov") == pytest.approx(C_ALPHA_05 * lambda_value(a, b), rel=1e-12)
    with pytest.raises(ValueError):
        lambda_value(a, b, mode="smirnov")


def test_lambda_matrix_equals_scalar_lambda_elementwise(rng):
    a, b = random_fingerprints(rng, 6), random_fingerprints(rng, 9)
    for mode in similarity.LAMBDA_MODES:
        matrix = lambda_matrix(a, b, mode=mode)
        assert matrix.shape == (6, 9)
        expected = [[lambda_value(ha, hb, mode=mode) for hb in b.hist] for ha in a.hist]
        np.testing.assert_array_equal(matrix, expected)


# ---- thinning ----------------------------------------------------------------------------------

def test_thinning_is_deterministic_exact_and_without_replacement():
    first = thin_indices(1000, 270, seed=5)
    np.testing.assert_array_equal(first, thin_indices(1000, 270, seed=5))
    assert not np.array_equal(first, thin_indices(1000, 270, seed=6))
    assert first.size == 270 and np.unique(first).size == 270
    assert first.min() >= 0 and first.max() < 1000
    with pytest.raises(ValueError):
        thin_indices(100, 270, seed=0)


def test_thinning_is_uniform():
    n, k, draws = 40, 10, 4000
    frequency = np.bincount(np.concatenate([thin_indices(n, k, seed) for seed in range(draws)]), minlength=n)
    assert chisquare(frequency).pvalue > 1e-3
    assert np.abs(frequency - draws * k / n).max() < 6 * np.sqrt(draws * k / n * (1 - k / n))


# ---- per-file fingerprints ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def file_case():
    """4 tiles at 300, 60, 20 and 120 loc/um² (2700, 540, 180 and 1080 localisations)."""
    rng = np.random.default_rng(1)
    origins = np.array([[0, 0], [3000, 0], [0, 3000], [3000, 3000]], dtype=float)
    counts = [2700, 540, 180, 1080]
    xy = np.concatenate([o + rng.uniform(0, 3000, (c, 2)) for o, c in zip(origins, counts)])
    return xy[:, 0], xy[:, 1], TileGrid(origins, np.zeros(4, dtype=np.int64))


def test_file_fingerprints_eligibility_counts_and_histograms(file_case):
    x, y, grid = file_case
    fp = file_fingerprints(x, y, grid, seed=3)
    assert fp.tile_index_unthinned.tolist() == [0, 1, 3]
    assert fp.tile_index_thinned[30].tolist() == [0, 1, 3]
    assert fp.tile_index_thinned[100].tolist() == [0, 3]
    assert fp.unthinned.n_locs.tolist() == [2700, 540, 1080]
    assert fp.thinned[30].n_locs.tolist() == [270] * 3 and fp.thinned[100].n_locs.tolist() == [900] * 2
    for prints in (fp.unthinned, fp.thinned[30], fp.thinned[100]):
        assert prints.hist.dtype == np.int32 and (prints.hist.sum(axis=1) == 10_000).all()
    assert_same_histogram(fp.unthinned.hist[0], tile_count_histogram(x, y, 0, 0))
    order, offsets = points_in_tiles(x, y, grid)
    members = order[offsets[3]:offsets[4]]
    kept = members[thin_indices(members.size, 900, similarity.tile_seed(3, 3, 100))]
    assert_same_histogram(fp.thinned[100].hist[1], tile_count_histogram(x[kept], y[kept], 3000, 3000))


def assert_same_histogram(padded, hist):
    np.testing.assert_array_equal(padded[:len(hist)], hist)
    assert not padded[len(hist):].any()


def test_thinned_tiles_also_need_min_locs(file_case):
    x, y, grid = file_case
    fp = file_fingerprints(x, y, grid, min_locs=1000)
    assert fp.tile_index_unthinned.tolist() == [0, 3]
    assert fp.tile_index_thinned[30].tolist() == [0, 3] and fp.tile_index_thinned[100].tolist() == [0, 3]


def test_file_fingerprints_are_deterministic_and_seeded(file_case):
    x, y, grid = file_case
    first, again, other = (file_fingerprints(x, y, grid, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(first.thinned[100].hist, again.thinned[100].hist)
    assert not np.array_equal(first.thinned[100].hist, other.thinned[100].hist)
    np.testing.assert_array_equal(first.unthinned.hist, other.unthinned.hist)


def test_fingerprints_concatenate_and_take(rng):
    a, b = random_fingerprints(rng, 3), random_fingerprints(rng, 2)
    b = Fingerprints(b.hist[:, :4], b.n_locs + 5)
    both = Fingerprints.concatenate([a, b])
    assert len(both) == 5 and both.hist.shape[1] == max(a.hist.shape[1], 4)
    np.testing.assert_array_equal(both.take([3, 4]).hist[:, :4], b.hist)
    np.testing.assert_array_equal(both.take(np.array([True, False, False, False, True])).n_locs,
                                  [1, b.n_locs[1]])
    assert len(Fingerprints.concatenate([])) == 0


# ---- summaries, set comparison, self-similarity, search -----------------------------------------

def test_summarise_statistics_and_empty_cases():
    summary = summarise(np.array([0.5, 2.0, 1.0, 3.5]))
    assert (summary.mean, summary.median, summary.fraction_above_1, summary.n_pairs) == (1.75, 1.5, 0.5, 4)
    assert summary.sd == pytest.approx(np.std([0.5, 2.0, 1.0, 3.5], ddof=1), rel=1e-14)
    one = summarise(np.array([0.3]))
    assert one.mean == 0.3 and np.isnan(one.sd)
    empty = summarise(np.array([]))
    assert empty.n_pairs == 0 and all(np.isnan([empty.mean, empty.sd, empty.median, empty.fraction_above_1]))
    assert empty.as_dict() == {"mean": None, "sd": None, "median": None, "fraction_above_1": None, "n_pairs": 0}


@pytest.mark.parametrize("size", [1, 2, 7, 10, 1001, 5000])
def test_summary_median_is_exact_with_ties(rng, size):
    for values in (rng.random(size), rng.integers(0, 4, size) / 3.0, np.sort(rng.random(size))[::-1]):
        assert summarise(values).median == np.median(values)


def test_compare_sets_all_pairs_and_sampled(rng):
    a, b = random_fingerprints(rng, 7), random_fingerprints(rng, 11)
    matrix = lambda_matrix(a, b)
    full = compare_sets(a, b)
    assert full.n_pairs == 77 and full.mean == pytest.approx(matrix.mean(), rel=1e-12)
    assert full.median == np.median(matrix)
    sampled = compare_sets(a, b, max_pairs=30, seed=1)
    assert sampled.n_pairs == 30
    assert sampled.mean == compare_sets(a, b, max_pairs=30, seed=1).mean
    assert sampled.mean != compare_sets(a, b, max_pairs=30, seed=2).mean


def assert_summary_of(summary, values):
    assert summary.n_pairs == values.size
    assert summary.mean == pytest.approx(values.mean(), rel=1e-12)
    assert summary.sd == pytest.approx(values.std(ddof=1), rel=1e-12)
    assert summary.median == np.median(values)
    assert summary.fraction_above_1 == np.mean(values > 1)


@pytest.mark.parametrize("file_ids", [[0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]])
def test_self_similarity_all_pairs_and_within_between_split(rng, file_ids):
    file_ids = np.array(file_ids)
    n = file_ids.size
    f = random_fingerprints(rng, n)
    result = self_similarity(f, file_ids)
    upper = np.triu_indices(n, k=1)
    assert result.lambdas.size == n * (n - 1) // 2
    np.testing.assert_array_equal(result.lambdas, lambda_matrix(f, f)[upper])
    np.testing.assert_array_equal(result.within_file, file_ids[upper[0]] == file_ids[upper[1]])
    assert result.summary_within.n_pairs == 3 + 1 + 6
    assert_summary_of(result.summary, result.lambdas)
    assert_summary_of(result.summary_within, result.lambdas[result.within_file])
    assert_summary_of(result.summary_between, result.lambdas[~result.within_file])
    assert self_similarity(f).within_file.all()


def test_self_similarity_sampled_pairs_keep_their_file_flags(rng):
    """Tiles of one file are identical, so a pair has lambda 0 exactly when it is within a file."""
    per_file = random_fingerprints(rng, 4)
    file_ids = np.repeat(np.arange(4), 30)
    f = per_file.take(file_ids)
    result = self_similarity(f, file_ids, max_pairs=500, seed=9)
    assert result.lambdas.size == 500
    np.testing.assert_array_equal(result.within_file, result.lambdas == 0)
    assert 0 < result.summary_within.n_pairs < 500
    np.testing.assert_array_equal(result.lambdas, self_similarity(f, file_ids, max_pairs=500, seed=9).lambdas)


@pytest.mark.parametrize("n", [2, 3, 17, 300_000_007])
def test_triangle_pair_decodes_linear_pair_indices(n):
    """Row-major upper triangle; the huge n exercises the float-rounding corrections."""
    first_of_row = lambda i: i * (2 * n - i - 1) // 2
    rows = range(n - 1) if n < 100 else np.random.default_rng(0).integers(0, n - 1, 2000)
    for i in rows:
        for k in {first_of_row(i), first_of_row(i + 1) - 1}:
            assert similarity._triangle_pair(k, n) == (i, k - first_of_row(i) + i + 1)


def test_search_chunks_respect_the_memory_budget():
    bounds = np.cumsum([0, 3, 0, 5, 20, 1, 1, 2])                 # tiles per dataset: 3, 0, 5, 20, 1, 1, 2
    chunks = similarity._dataset_chunks(bounds, n_query=4, max_values=40)
    assert chunks[0][0] == 0 and chunks[-1][1] == 7
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    for lo, hi in chunks:
        assert (bounds[hi] - bounds[lo]) * 4 <= 40 or hi == lo + 1


@pytest.mark.parametrize("block_values", [similarity.MAX_BLOCK_VALUES, 40])
def test_search_bank_equals_compare_sets_per_dataset(rng, monkeypatch, block_values):
    monkeypatch.setattr(similarity, "MAX_BLOCK_VALUES", block_values)
    query, bank = random_fingerprints(rng, 5), random_fingerprints(rng, 40)
    dataset = rng.permutation(np.repeat([0, 1, 3, 4, 5], [1, 9, 20, 6, 4]))   # dataset 2 is empty
    for mode in similarity.LAMBDA_MODES:
        result = search_bank(query, bank, dataset, 6, mode=mode)
        for d in range(6):
            expected = compare_sets(query, bank.take(dataset == d), mode=mode, max_pairs=10**9)
            assert result.n_pairs[d] == expected.n_pairs
            ours = [result.mean[d], result.sd[d], result.median[d], result.fraction_above_1[d]]
            reference = [expected.mean, expected.sd, expected.median, expected.fraction_above_1]
            np.testing.assert_allclose(ours, reference, rtol=1e-12, equal_nan=True)
    assert np.isnan(result.mean[2]) and result.n_pairs[2] == 0 and np.isfinite(result.sd[0])


@pytest.mark.parametrize("block_values", [similarity.MAX_BLOCK_VALUES, 40])
def test_search_bank_over_thinnings_equals_compare_repeated_per_dataset(rng, monkeypatch, block_values):
    """Several thinnings: each pair's lambda averaged over them (compare_repeated, all pairs), and
    each thinning's own mean per dataset (brute force lambda_matrix)."""
    monkeypatch.setattr(similarity, "MAX_BLOCK_VALUES", block_values)
    queries = [random_fingerprints(rng, 5) for _ in range(3)]
    banks = [random_fingerprints(rng, 40) for _ in range(4)]                   # the bank has one more: 3 used
    dataset = rng.permutation(np.repeat([0, 1, 3, 4, 5], [1, 9, 20, 6, 4]))   # dataset 2 is empty
    result = search_bank(queries, banks, dataset, 6)
    assert result.n_repeats == 3
    for d in range(6):
        members = np.flatnonzero(dataset == d)
        if members.size == 0:
            assert np.isnan(result.repeat_means[d]).all() and np.isnan(result.mean[d]) and result.n_pairs[d] == 0
            continue
        expected = similarity.compare_repeated(queries, [b.take(members) for b in banks[:3]], max_pairs=10**9)
        ours = [result.mean[d], result.sd[d], result.median[d], result.fraction_above_1[d], result.sd_repeats[d]]
        reference = [expected.summary.mean, expected.summary.sd, expected.summary.median,
                     expected.summary.fraction_above_1, expected.sd_repeats]
        np.testing.assert_allclose(ours, reference, rtol=1e-12, equal_nan=True)
        brute = [lambda_matrix(queries[r], banks[r].take(members)).mean() for r in range(3)]
        np.testing.assert_allclose(result.repeat_means[d], brute, rtol=1e-12)
    single = search_bank(queries[0], banks[0], dataset, 6)
    assert single.n_repeats == 1 and np.isnan(single.sd_repeats).all()
    np.testing.assert_allclose(single.repeat_means[:, 0], single.mean, rtol=1e-12)
    with pytest.raises(ValueError, match="same tiles"):
        search_bank([queries[0], queries[1].take(np.arange(4))], banks[:2], dataset, 6)


# ---- science checks (docs/SCIENCE.md §2.6), 9 x 9 um fields = 9 tiles of 3 x 3 um ------------------------

FIELD_NM = 9000.0
GRID = grid_tiles([box(0, 0, FIELD_NM, FIELD_NM)])


def field_fingerprints(pattern):
    return file_fingerprints(pattern.x, pattern.y, GRID, seed=7)


def clustered_field(density, locs_per_cluster, seed):
    return field_fingerprints(simulate_clustered(density, FIELD_NM, FIELD_NM, locs_per_cluster=locs_per_cluster,
                                                 seed=seed))


@pytest.fixture(scope="module")
def fields():
    """Clusters: Thomas, sigma 50 nm, 70 % clustered. 'clustered_150' has the cluster layout statistics
    of 'clustered_300' with half of the localisations per cluster (a lower detection efficiency)."""
    return {
        "clustered_300": clustered_field(300, locs_per_cluster=20, seed=1),
        "clustered_150": clustered_field(150, locs_per_cluster=10, seed=2),
        "clustered_300_b": clustered_field(300, locs_per_cluster=20, seed=3),
        "csr_300": field_fingerprints(simulate_csr(300, FIELD_NM, FIELD_NM, seed=4)),
        "csr_150": field_fingerprints(simulate_csr(150, FIELD_NM, FIELD_NM, seed=5)),
    }


def mean_lambda(fields, a, b, target=None):
    pick = (lambda f: f.unthinned) if target is None else (lambda f: f.thinned[target])
    return compare_sets(pick(fields[a]), pick(fields[b])).mean


@pytest.mark.parametrize("process", ["clustered", "csr"])
def test_same_process_at_300_and_150_differs_unthinned_but_not_thinned(fields, process):
    a, b = f"{process}_300", f"{process}_150"
    assert len(fields[a].thinned[100]) == len(fields[b].thinned[100]) == 9
    assert mean_lambda(fields, a, b) > 1
    assert mean_lambda(fields, a, b, target=30) < 1
    assert mean_lambda(fields, a, b, target=100) < 1


def test_clustered_vs_csr_at_equal_density_is_significant_unthinned(fields):
    assert mean_lambda(fields, "clustered_300", "csr_300") > 1


def test_same_process_pairs_score_below_clustered_vs_csr_pairs(fields):
    assert (mean_lambda(fields, "clustered_300", "clustered_300_b")
            < mean_lambda(fields, "clustered_300", "csr_300"))
    assert (mean_lambda(fields, "clustered_300", "clustered_150", target=100)
            < mean_lambda(fields, "clustered_300", "csr_300", target=100))
    assert (mean_lambda(fields, "csr_300", "csr_150", target=100)
            < mean_lambda(fields, "clustered_150", "csr_150", target=100))


# ---- repeated thinnings, Bernoulli thinning, pair audit ------------------------------------------

def test_repeated_thinnings_are_independent_and_keep_the_first_draw(file_case):
    x, y, grid = file_case
    single = file_fingerprints(x, y, grid, seed=3)
    repeated = file_fingerprints(x, y, grid, seed=3, n_repeats=4)
    for target in (30, 100):
        draws = repeated.repeats(target)
        assert len(draws) == 4
        np.testing.assert_array_equal(draws[0].hist, single.thinned[target].hist)
        assert all((d.n_locs == single.thinned[target].n_locs).all() for d in draws)
        assert len({d.hist.tobytes() for d in draws}) == 4          # four different draws
    again = file_fingerprints(x, y, grid, seed=3, n_repeats=4)
    np.testing.assert_array_equal(again.repeats(30)[3].hist, repeated.repeats(30)[3].hist)
    with pytest.raises(ValueError):
        file_fingerprints(x, y, grid, n_repeats=0)


def test_bernoulli_thinning_keeps_each_localisation_with_the_file_probability(file_case):
    x, y, grid = file_case
    fp = file_fingerprints(x, y, grid, seed=3, thinning="bernoulli", n_repeats=2)
    eligible = [0, 1, 3]                                   # >= 270 localisations
    density = (2700 + 540 + 1080) / (3 * 9.0)              # 160 loc/um² over the eligible tiles
    assert fp.tile_index_thinned[30].tolist() == eligible and fp.tile_index_thinned[100].tolist() == eligible
    order, offsets = points_in_tiles(x, y, grid)
    for target in (30, 100):
        p = target / density
        for repeat, prints in enumerate(fp.repeats(target)):
            for row, k in enumerate(eligible):
                members = order[offsets[k]:offsets[k + 1]]
                kept = members[similarity.bernoulli_keep(members.size, p, similarity.tile_seed(3, k, target, repeat))]
                assert prints.n_locs[row] == kept.size
                assert_same_histogram(prints.hist[row], tile_count_histogram(x[kept], y[kept], *grid.origins[k]))
        total = fp.thinned[target].n_locs.sum()
        n = 2700 + 540 + 1080
        assert abs(total - p * n) < 4 * np.sqrt(n * p * (1 - p))         # binomial, 4 SD
    sparse = file_fingerprints(x, y, grid, targets=(300,), thinning="bernoulli")
    assert len(sparse.thinned[300]) == 0                    # file density below the target: no thinned tiles
    with pytest.raises(ValueError):
        file_fingerprints(x, y, grid, thinning="poisson")


def test_compare_repeated_averages_lambda_over_repeats(rng):
    a = [random_fingerprints(rng, 5) for _ in range(3)]
    b = [random_fingerprints(rng, 4) for _ in range(3)]
    result = similarity.compare_repeated(a, b)
    per_repeat = np.array([lambda_matrix(a[r], b[r]).ravel() for r in range(3)])
    averaged = per_repeat.mean(axis=0)
    assert result.n_repeats == 3 and result.summary.n_pairs == 20
    assert result.summary.mean == pytest.approx(averaged.mean(), rel=1e-12)
    assert result.summary.median == pytest.approx(np.median(averaged), rel=1e-12)
    assert result.summary.sd == pytest.approx(averaged.std(ddof=1), rel=1e-12)
    assert result.sd_repeats == pytest.approx(per_repeat.mean(axis=1).std(ddof=1), rel=1e-12)
    one = similarity.compare_repeated(a[:1], b)
    assert one.summary.mean == pytest.approx(compare_sets(a[0], b[0]).mean, rel=1e-12)
    assert one.as_dict()["n_repeats"] == 1 and one.as_dict()["sd_repeats"] is None
    sampled = similarity.compare_repeated(a, b, max_pairs=7, seed=2)
    assert sampled.summary.n_pairs == 7


def test_self_similarity_over_thinnings_averages_each_pair(rng):
    """Several thinnings of the same tiles: each pair's lambda averaged over them (brute force
    lambda_matrix per thinning), all pairs and sampled pairs alike."""
    thinnings = [random_fingerprints(rng, 7) for _ in range(3)]
    files = np.array([0, 0, 0, 1, 1, 2, 2])
    i, j = np.triu_indices(7, k=1)
    per_thinning = np.array([lambda_matrix(t, t)[i, j] for t in thinnings])
    result = similarity.self_similarity(thinnings, files)
    np.testing.assert_allclose(result.lambdas, per_thinning.mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(result.within_file, files[i] == files[j])
    assert result.summary.mean == pytest.approx(per_thinning.mean(), rel=1e-12)
    assert result.n_repeats == 3
    assert result.sd_repeats == pytest.approx(per_thinning.mean(axis=1).std(ddof=1), rel=1e-12)
    sampled = similarity.self_similarity(thinnings, files, max_pairs=9, seed=4)
    first = similarity.self_similarity(thinnings[0], files, max_pairs=9, seed=4)
    assert sampled.summary.n_pairs == 9 and first.n_repeats == 1 and np.isnan(first.sd_repeats)
    np.testing.assert_array_equal(sampled.within_file, first.within_file)     # the same sampled pairs
    with pytest.raises(ValueError, match="same tiles"):
        similarity.self_similarity([thinnings[0], thinnings[1].take(np.arange(5))])


def test_pair_audit_matches_scipy_ks(rng):
    a, b = random_fingerprints(rng, 3, n_bins=400), random_fingerprints(rng, 4, n_bins=900)
    audit = similarity.pair_audit(a, b, max_pairs=5, seed=1)
    assert audit["D"].size == 5
    sampled = compare_sets(a, b, max_pairs=5, seed=1)
    assert np.mean(audit["lambda_critical"]) == pytest.approx(sampled.mean, rel=1e-12)
    for i, j, d, n, m, lam_c, lam_k in zip(*(audit[k] for k in ("tile_a", "tile_b", "D", "n", "m", "lambda_critical",
                                                                  "lambda_kolmogorov"))):
        reference = ks_2samp(expand(a.hist[i]), expand(b.hist[j])).statistic
        assert d == pytest.approx(reference, abs=1e-12) and (n, m) == (400, 900)
        assert lam_k == pytest.approx(np.sqrt(n * m / (n + m)) * reference)
        assert lam_c == pytest.approx(lam_k / C_ALPHA_05)
