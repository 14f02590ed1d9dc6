"""LIBSVM's files and command line: models written here are read by LIBSVM's own predict (the
``libsvm-official`` package, the dev extra) with the same predictions, and LIBSVM's models are read here."""

import numpy as np
import pytest
import scipy.sparse
from libsvm import svmutil
from sklearn.datasets import dump_svmlight_file, load_iris, make_friedman1

import torchsvm as ts
from torchsvm.libsvm_cli import predict_main, train_main
from torchsvm.libsvm_format import load_data, load_model, save_model

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
REG_X, REG_Y = make_friedman1(300, random_state=0)


def _libsvm_predict(model_path, X, y, options=""):
    """LIBSVM's own prediction: labels (and with "-b 1" probabilities, in its label order) from its C
    functions. (libsvm-official's svm_predict sizes the decision buffer of a multi-class nu-SVC model
    for one value and overruns it, so its Python loop is not used.)"""
    from ctypes import c_double

    from libsvm.svm import gen_svm_nodearray, libsvm

    model = svmutil.svm_load_model(str(model_path))
    labels, probabilities = [], []
    for row in X.tolist():
        node, _ = gen_svm_nodearray(row)
        if "-b 1" in options:
            estimates = (c_double * model.get_nr_class())()
            labels.append(libsvm.svm_predict_probability(model, node, estimates))
            probabilities.append(estimates[: model.get_nr_class()])
        else:
            labels.append(libsvm.svm_predict(model, node))
    return np.asarray(labels), np.asarray(probabilities)


@pytest.mark.parametrize("labels", [IRIS_Y, (IRIS_Y == 2).astype(int), np.where(IRIS_Y == 2, 1, -1)],
                         ids=["three", "binary01", "binary-pm1"])
@pytest.mark.parametrize("make", [lambda: ts.SVC(gamma=0.3, device="cpu"), lambda: ts.NuSVC(nu=0.2, device="cpu"),
                                  lambda: ts.SVC(kernel="poly", degree=2, coef0=1.0, gamma=0.2, device="cpu"),
                                  lambda: ts.SVC(kernel="linear", C=0.1, device="cpu")], ids=["svc", "nusvc", "poly", "linear"])
def test_classifiers_written_here_predict_the_same_in_libsvm(tmp_path, make, labels):
    est = make().fit(IRIS_X, labels)
    save_model(est, tmp_path / "m.model")
    predicted, _ = _libsvm_predict(tmp_path / "m.model", IRIS_X, labels)
    np.testing.assert_array_equal(predicted, est.predict(IRIS_X))
    back = load_model(tmp_path / "m.model", device="cpu")  # and read back: the same model
    np.testing.assert_allclose(back.decision_function(IRIS_X), est.decision_function(IRIS_X), atol=1e-12)


@pytest.mark.parametrize("make", [lambda: ts.SVR(device="cpu"), lambda: ts.NuSVR(nu=0.3, device="cpu"),
                                  lambda: ts.OneClassSVM(nu=0.2, device="cpu")], ids=["svr", "nusvr", "oneclass"])
def test_regression_and_one_class_written_here_predict_the_same_in_libsvm(tmp_path, make):
    est = make()
    est.fit(REG_X, REG_Y) if not isinstance(est, ts.OneClassSVM) else est.fit(REG_X)
    save_model(est, tmp_path / "m.model")
    predicted, _ = _libsvm_predict(tmp_path / "m.model", REG_X, REG_Y)
    np.testing.assert_allclose(predicted, est.predict(REG_X), atol=1e-10)
    np.testing.assert_allclose(load_model(tmp_path / "m.model", device="cpu").predict(REG_X), est.predict(REG_X), atol=1e-12)


@pytest.mark.parametrize("labels", [IRIS_Y, np.where(IRIS_Y == 2, 1, -1)[::-1]], ids=["three", "pm1-plus-first"])
def test_models_trained_by_libsvm_are_read_here(tmp_path, labels):
    """LIBSVM orders its labels by first appearance (+1 before -1 here), torchsvm sorts them: the pairs,
    their signs and Platt's sigmoids are turned accordingly."""
    X = IRIS_X[::-1] if len(np.unique(labels)) == 2 else IRIS_X
    model = svmutil.svm_train(list(map(float, labels)), X.tolist(), "-c 2 -g 0.4 -b 1 -q")
    svmutil.svm_save_model(str(tmp_path / "lib.model"), model)
    ours = load_model(tmp_path / "lib.model", device="cpu", n_features=4)
    predicted, _ = _libsvm_predict(tmp_path / "lib.model", X, labels)
    np.testing.assert_array_equal(ours.predict(X), predicted)
    _, proba = _libsvm_predict(tmp_path / "lib.model", X, labels, "-b 1")
    order = np.argsort(model.get_labels())  # LIBSVM's columns follow its labels; ours are sorted
    np.testing.assert_allclose(ours.predict_proba(X), proba[:, order], atol=1e-6)


def test_probability_models_written_here_give_libsvms_probabilities(tmp_path):
    with pytest.warns(FutureWarning):
        est = ts.SVC(probability=True, random_state=0, device="cpu").fit(IRIS_X, IRIS_Y)
    save_model(est, tmp_path / "p.model")
    _, proba = _libsvm_predict(tmp_path / "p.model", IRIS_X, IRIS_Y, "-b 1")
    np.testing.assert_allclose(proba, est.predict_proba(IRIS_X), atol=1e-6)


def test_what_a_model_file_cannot_hold(tmp_path):
    dot = lambda A, B: A @ B.T  # noqa: E731
    for est, message in ((ts.SVC(kernel=dot, device="cpu").fit(IRIS_X, IRIS_Y), "a kernel LIBSVM names"),
                         (ts.SVC(multi_class="ovr", device="cpu").fit(IRIS_X, IRIS_Y), "one-vs-one"),
                         (ts.SVC(device="cpu").fit(IRIS_X, np.array(["a", "b", "c"])[IRIS_Y]), "integer class labels")):
        with pytest.raises(ValueError, match=message):
            save_model(est, tmp_path / "x.model")
    (tmp_path / "bad.model").write_text("svm_type c_svc\nkernel_type rbf\n")
    with pytest.raises(ValueError, match="found no 'SV' line"):
        load_model(tmp_path / "bad.model")
    (tmp_path / "bad2.model").write_text("svm_type c_svc\nkernel_type quadratic\nnr_class 2\nSV\n")
    with pytest.raises(ValueError, match="line 2: expected kernel_type one of"):
        load_model(tmp_path / "bad2.model")
    (tmp_path / "bad3.model").write_text("svm_type epsilon_svr\nkernel_type precomputed\nrho 0.5\nSV\n0.25 1:0.5\n")
    with pytest.raises(ValueError, match="expected each support vector of a precomputed-kernel model as 0:serial"):
        load_model(tmp_path / "bad3.model")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / "missing.model")


def test_data_files_and_their_errors(tmp_path):
    dump_svmlight_file(IRIS_X, IRIS_Y, str(tmp_path / "ok.txt"), zero_based=False)
    X, y = load_data(tmp_path / "ok.txt")
    assert scipy.sparse.isspmatrix_csr(X)  # kept sparse, as the file stores it
    np.testing.assert_allclose(X.toarray(), IRIS_X)
    np.testing.assert_array_equal(y, IRIS_Y)
    (tmp_path / "bad.txt").write_text("1 1:0.5 2:1\n2 1:0.3 2 0.1\n")
    with pytest.raises(ValueError, match=r"bad.txt: line 2: expected 'label index:value index:value ...' "
                                         r"\(indices up to 2147483647\), got '2 1:0.3 2 0.1'"):
        load_data(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_data(tmp_path / "none.txt")


def test_command_line_train_predict_and_cross_validation(tmp_path, capsys):
    train, test = tmp_path / "iris.tr", tmp_path / "iris.te"
    dump_svmlight_file(IRIS_X[::2], IRIS_Y[::2], str(train), zero_based=False)
    dump_svmlight_file(IRIS_X[1::2], IRIS_Y[1::2], str(test), zero_based=False)
    model, out = tmp_path / "iris.model", tmp_path / "iris.out"
    assert train_main(["-c", "10", "-g", "0.5", "-w2", "2", "--device", "cpu", str(train), str(model)]) == 0
    assert "Total nSV = " in capsys.readouterr().out
    assert predict_main(["--device", "cpu", str(test), str(model), str(out)]) == 0
    printed = capsys.readouterr().out
    # the same model in Python, and in LIBSVM's own predict: the same predictions and line
    est = ts.SVC(C=10, gamma=0.5, class_weight={2: 2.0}, device="cpu").fit(IRIS_X[::2], IRIS_Y[::2])
    expected = est.predict(IRIS_X[1::2])
    np.testing.assert_array_equal(np.loadtxt(out), expected)
    libsvm, _ = _libsvm_predict(model, IRIS_X[1::2], IRIS_Y[1::2])
    np.testing.assert_array_equal(libsvm, expected)
    correct = int((expected == IRIS_Y[1::2]).sum())
    assert printed.strip() == f"Accuracy = {100 * correct / 75:g}% ({correct}/75) (classification)"
    assert train_main(["-v", "5", "-q", "--device", "cpu", str(train)]) == 0
    assert capsys.readouterr().out.startswith("Cross Validation Accuracy = ")
    reg_tr = tmp_path / "reg.tr"
    dump_svmlight_file(REG_X, REG_Y, str(reg_tr), zero_based=False)
    assert train_main(["-s", "3", "-p", "0.2", "-q", "--device", "cpu", str(reg_tr), str(tmp_path / "r.model")]) == 0
    assert predict_main(["--device", "cpu", str(reg_tr), str(tmp_path / "r.model"), str(tmp_path / "r.out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Mean squared error = ") and lines[0].endswith(" (regression)")
    assert lines[1].startswith("Squared correlation coefficient = ")


def test_command_line_errors(tmp_path, capsys):
    dump_svmlight_file(IRIS_X, IRIS_Y, str(tmp_path / "d.txt"), zero_based=False)
    for argv, message in ((["-x", "1", str(tmp_path / "d.txt")], "Unknown option: -x"),
                          (["-t", "4", str(tmp_path / "d.txt")], "line 1: expected 0:serial number in 1..3"),
                          (["-t", "5", str(tmp_path / "d.txt")], "Expected -t kernel_type 0-4, got 5"),
                          (["-s", "7", str(tmp_path / "d.txt")], "Expected -s svm_type 0-4, got 7"),
                          (["-c", "big", str(tmp_path / "d.txt")], "Expected a number after -c, got 'big'"),
                          (["-w9", "2", str(tmp_path / "d.txt")], r"Expected -w<label> for labels of the training set"),
                          ([], "Expected 1-2 file name"),
                          ([str(tmp_path / "none.txt")], "no such file")):
        assert train_main(argv) == 1
        assert message in capsys.readouterr().err
    assert predict_main(["-b", "1", str(tmp_path / "d.txt"), str(tmp_path / "none.model"), str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err


def _kernel_file(path, K, labels, serial):
    """LIBSVM's precomputed-kernel format: label 0:serial 1:K(x, x_1) ... (column j for serial number j)."""
    dump_svmlight_file(np.hstack([serial[:, None].astype(float), K]), labels, str(path), zero_based=True)


def test_precomputed_kernel_files_both_ways(tmp_path, capsys):
    """-t 4: training rows named by (shuffled) serial numbers, models written here read by LIBSVM and the
    reverse, the same predictions as the kernel fit from X."""
    from ctypes import c_double  # noqa: F401 (libsvm's C calls below)

    from libsvm.svm import gen_svm_nodearray, libsvm
    from sklearn.metrics.pairwise import rbf_kernel

    rng = np.random.default_rng(0)
    train = rng.permutation(150)[:100]
    test = np.setdiff1d(np.arange(150), train)
    X, Xt, y, yt = IRIS_X[train], IRIS_X[test], IRIS_Y[train], IRIS_Y[test]
    serial = rng.permutation(100) + 1  # row i is training row number serial[i]
    by_serial = np.argsort(serial)  # column j - 1 holds the row with serial number j
    K, Kt = rbf_kernel(X, X[by_serial], gamma=0.3), rbf_kernel(Xt, X[by_serial], gamma=0.3)
    _kernel_file(tmp_path / "train", K, y, serial)
    _kernel_file(tmp_path / "test", Kt, yt, np.arange(1, len(yt) + 1))
    assert train_main(["-t", "4", "-c", "2", "-q", str(tmp_path / "train"), str(tmp_path / "ours.model")]) == 0
    assert predict_main([str(tmp_path / "test"), str(tmp_path / "ours.model"), str(tmp_path / "out")]) == 0
    expected = ts.SVC(C=2.0, gamma=0.3, device="cpu").fit(X, y).predict(Xt)
    ours = np.loadtxt(tmp_path / "out")
    np.testing.assert_array_equal(ours, expected)
    assert f"Accuracy = {100 * np.mean(expected == yt):g}%" in capsys.readouterr().out

    def libsvm_predict(model_path):
        model = svmutil.svm_load_model(str(model_path))
        rows = np.hstack([np.arange(1, len(yt) + 1)[:, None], Kt])
        return np.asarray([libsvm.svm_predict(model, gen_svm_nodearray(r, isKernel=True)[0]) for r in rows])

    np.testing.assert_array_equal(libsvm_predict(tmp_path / "ours.model"), expected)  # LIBSVM reads ours
    rows = np.hstack([serial[:, None], K]).tolist()
    svmutil.svm_save_model(str(tmp_path / "lib.model"), svmutil.svm_train(y.tolist(), rows, "-t 4 -c 2 -q"))
    assert predict_main([str(tmp_path / "test"), str(tmp_path / "lib.model"), str(tmp_path / "out2"), "-q"]) == 0
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "out2"), libsvm_predict(tmp_path / "lib.model"))
    # Cross-validation cuts the Gram matrix both ways.
    assert train_main(["-t", "4", "-c", "2", "-v", "3", str(tmp_path / "train")]) == 0
    assert "Cross Validation Accuracy = " in capsys.readouterr().out
    # A serial number outside 1..L names its line.
    _kernel_file(tmp_path / "bad", K[:3], y[:3], np.array([1, 2, 500]))
    assert train_main(["-t", "4", str(tmp_path / "bad"), str(tmp_path / "bad.model")]) == 1
    assert "line 3: expected 0:serial number in 1..100" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["svr", "svc"])
def test_a_support_vector_of_coefficient_zero_is_dropped_everywhere(tmp_path, kind):
    """A model file whose support vector has all-zero coefficients (LIBSVM writes none, a hand-edited file may):
    support_, support_vectors_, dual_coef_ and n_support_ all leave it out, and predict runs."""
    X, y = load_iris(return_X_y=True)
    est = ts.SVR(device="cpu").fit(X[:, :3], X[:, 3]) if kind == "svr" else ts.SVC(device="cpu").fit(X, y)
    save_model(est, tmp_path / "m.model")
    lines = (tmp_path / "m.model").read_text().splitlines()
    first = lines.index("SV") + 1
    tokens = lines[first].split()
    tokens[: 1 if kind == "svr" else 2] = ["0"] * (1 if kind == "svr" else 2)  # its coefficients (k - 1 of them)
    lines[first] = " ".join(tokens)
    (tmp_path / "zero.model").write_text("\n".join(lines) + "\n")
    model = load_model(tmp_path / "zero.model", device="cpu")
    n = len(est.support_) - 1
    assert len(model.support_) == model.support_vectors_.shape[0] == model.dual_coef_.shape[1] == n
    assert model.n_support_.sum() == n
    assert model.predict(X[:5, : model.n_features_in_]).shape == (5,)
