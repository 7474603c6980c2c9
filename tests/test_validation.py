import warnings

import numpy as np
import pytest
import torch

from vaelab import _validation as v


def test_check_2d_accepts_numpy_and_torch():
    assert v.check_2d(np.zeros((3, 2))).dtype == torch.float64
    assert v.check_2d(torch.zeros(3, 2)).dtype == torch.float32
    assert v.check_2d([[1, 2]]).dtype == torch.get_default_dtype()
    assert v.check_2d(np.zeros((3, 2)), dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("X, msg", [
    (np.zeros(64), r"`X` must be 2-D of shape \(n_samples, n_features\), got shape \(64,\)"),
    (np.zeros((2, 3, 4)), r"got shape \(2, 3, 4\)"),
    (np.zeros((0, 3)), r"`X` must have at least 1 sample\(s\), got shape \(0, 3\)"),
    (np.zeros((3, 0)), r"`X` must have at least one feature: 0 feature\(s\) \(shape=\(3, 0\)\) while a minimum of 1 is required"),
    (np.array([[0.0, np.nan], [np.inf, 1.0]]), r"`X` must contain only finite values, got 2 NaN or infinite value\(s\), the first at index \(0, 1\)"),
])
def test_check_2d_rejects(X, msg):
    with pytest.raises(ValueError, match=msg):
        v.check_2d(X)


def test_check_2d_feature_count_and_names():
    with pytest.raises(ValueError, match="`x_valid` must have 3 features"):
        v.check_2d(np.zeros((2, 4)), "x_valid", n_features=3)


@pytest.mark.parametrize("X, msg", [("abc", "must be a numpy array or a torch tensor, got str"),
                                    (np.array([["a"]]), "must hold real numbers"),
                                    (np.array([[1.0, {"a": 1}]], dtype=object), "must hold real numbers, got an array of dtype object"),
                                    (object(), "must be a numpy array or a torch tensor, got object")])
def test_as_tensor_type_errors(X, msg):
    with pytest.raises(TypeError, match=msg):
        v.as_tensor(X, "X")


def test_positive_int():
    assert v.check_positive_int(np.int64(3), "n") == 3
    with pytest.raises(ValueError, match="`n` must be an integer >= 1, got 0"):
        v.check_positive_int(0, "n")
    with pytest.raises(TypeError, match="`n` must be an integer >= 1, got True of type bool"):
        v.check_positive_int(True, "n")
    with pytest.raises(TypeError, match="got '3' of type str"):
        v.check_positive_int("3", "n")


def test_real_checks():
    assert v.check_positive(2, "obs_scale") == 2.0
    assert v.check_nonnegative(0, "beta") == 0.0
    with pytest.raises(ValueError, match="`obs_scale` must be a finite number > 0, got 0.0"):
        v.check_positive(0.0, "obs_scale")
    with pytest.raises(ValueError, match="`beta` must be a finite number >= 0, got -1.0"):
        v.check_nonnegative(-1, "beta")
    with pytest.raises(ValueError, match="`beta` must be a finite number >= 0, got nan"):
        v.check_nonnegative(float("nan"), "beta")
    with pytest.raises(TypeError, match="`beta` must be a finite number >= 0, got None"):
        v.check_nonnegative(None, "beta")
    with pytest.raises(ValueError, match=r"`p` must be a number in \(0, 1\), got 1.0"):
        v.check_fraction(1.0, "p")


def test_choice():
    assert v.check_choice("full", "covariance_type", ["full", "diag"]) == "full"
    with pytest.raises(ValueError, match="`covariance_type` must be one of 'full', 'diag'; got 'tied'"):
        v.check_choice("tied", "covariance_type", ["full", "diag"])


def test_probabilities():
    torch.testing.assert_close(v.check_probabilities([0.25, 0.75], "weights"), torch.tensor([0.25, 0.75], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"`weights` must sum to 1 \(within 1e-08\), got a sum of 0.9"):
        v.check_probabilities([0.4, 0.5], "weights")
    with pytest.raises(ValueError, match="`weights` must be non-negative, got a minimum of -0.5"):
        v.check_probabilities([-0.5, 1.5], "weights")
    with pytest.raises(ValueError, match=r"`weights` must be a non-empty 1-D array of probabilities, got shape \(2, 1\)"):
        v.check_probabilities([[0.5], [0.5]], "weights")


@pytest.mark.parametrize("X", [np.zeros((2, 2), dtype=np.complex128), torch.zeros(2, 2, dtype=torch.complex64)])
def test_as_tensor_refuses_complex_numbers_in_scikit_learns_words(X):
    with pytest.raises(ValueError, match=r"`X` must hold real numbers: Complex data not supported, got dtype"):
        v.as_tensor(X, "X")


def test_as_tensor_names_a_ragged_list():
    with pytest.raises(ValueError, match=r"`X` must be a rectangular array \(every row of the same length\), got a ragged"):
        v.as_tensor([[1, 2], [3]], "X")


def test_as_tensor_refuses_sparse_input_saying_so():
    from scipy import sparse
    with pytest.raises(TypeError, match=r"`X` must be a dense .*sparse input is not supported \(got a csr_matrix\): "
                                        r"convert it with X.toarray\(\)"):
        v.as_tensor(sparse.csr_matrix(np.eye(2)), "X")


def test_as_tensor_takes_object_arrays_of_numbers_read_only_arrays_and_array_likes():
    assert v.as_tensor(np.array([[1, 2.5]], dtype=object), "X").tolist() == [[1.0, 2.5]]
    frozen = np.arange(4.0).reshape(2, 2)
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it wraps a read-only buffer
        t = v.as_tensor(frozen, "X")
    t[0, 0] = 9.0
    assert frozen[0, 0] == 0.0  # copied, not shared

    class ArrayLike:
        def __array__(self, dtype=None, copy=None):
            return np.ones((2, 3))
    assert v.as_tensor(ArrayLike(), "X").shape == (2, 3)


def test_check_2d_one_dimensional_says_how_to_reshape():
    with pytest.raises(ValueError, match=r"got shape \(3,\)\. Reshape your data: X.reshape\(-1, 1\) if it has one feature"):
        v.check_2d(np.zeros(3))
