import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vaelab.plot import loglik_vs_parameters  # noqa: E402

RESULTS = [
    dict(family="GMM diag", n_parameters=1289, test=54.1),
    dict(family="GMM diag", n_parameters=128, test=30.8, label="K=1"),
    dict(family="GMM full", n_parameters=2144, test=50.1),
    dict(family="GMM full", n_parameters=214499, test=-450.9),
    dict(family="my model", n_parameters=5000, test=60.0),
]


def test_one_line_per_family_sorted_by_parameters():
    fig, ax = plt.subplots()
    loglik_vs_parameters(RESULTS, ax=ax)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"GMM diag", "GMM full", "my model"} <= set(lines)
    np.testing.assert_array_equal(lines["GMM diag"].get_xdata(), [128, 1289])
    np.testing.assert_array_equal(lines["GMM diag"].get_ydata(), [30.8, 54.1])
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.texts] == ["K=1"]
    plt.close(fig)


def test_points_below_the_frame_sit_on_its_edge_with_their_value():
    fig, ax = plt.subplots()
    loglik_vs_parameters(RESULTS, ax=ax, ylim=(20, 80), title="t")
    full = next(line for line in ax.get_lines() if line.get_label() == "GMM full")
    np.testing.assert_array_equal(full.get_ydata(), [50.1, 20])
    assert "-451" in [t.get_text() for t in ax.texts]
    assert ax.get_ylim() == (20, 80) and ax.get_title() == "t"
    plt.close(fig)


def test_error_bars_where_given_and_linear_families_styled():
    rows = [dict(family="VAE per-pixel σ(z)", n_parameters=9000, test=71.0, test_err=0.5),
            dict(family="VAE per-pixel σ(z)", n_parameters=18000, test=74.0),
            dict(family="pPCA", n_parameters=1089, test=26.1), dict(family="factor analysis", n_parameters=1152, test=48.5)]
    fig, ax = plt.subplots()
    loglik_vs_parameters(rows, ax=ax)
    assert len(ax.containers) == 1  # only the point with test_err has a bar
    segments = ax.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose(segments[0], [[9000, 70.5], [9000, 71.5]])
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["pPCA"].get_marker() == "^" and lines["factor analysis"].get_color() != lines["pPCA"].get_color()
    plt.close(fig)
