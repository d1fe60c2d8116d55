"""Task data generators, reference configurations and metrics."""

import numpy as np
import pytest

from benchmarks.data import metrics, tasks


def test_xor_truth_table():
    x, y = tasks.xor_data()
    assert x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert y.ravel().tolist() == [0, 1, 1, 0]


def test_reverse4_splits_are_the_blogs():
    x, y = tasks.reverse_data(tasks.REVERSE4_TRAIN)
    as_text = ["".join(str(int(b)) for b in row) for row in np.vstack([x, y])]
    assert as_text == ["0000", "0001", "0010", "0101", "0110", "0111",
                       "0000", "1000", "0100", "1010", "0110", "1110"]
    x_test, _ = tasks.reverse_data(tasks.REVERSE4_TEST)
    assert (x_test[:, 0] == 1).all() and (x[:, 0] == 0).all()
    held, _ = tasks.reverse_data(tasks.REVERSE4_HELD_OUT)
    assert sorted(tasks.REVERSE4_TRAIN + tasks.REVERSE4_HELD_OUT) == list(range(8))
    assert (held[:, 0] == 0).all()


def test_reference_configurations_match_the_anchors():
    xor = tasks.get_config("xor")
    assert (xor.epochs, xor.batch_size, xor.optimizer["learning_rate"]) == (100_000, 4, 0.01)
    rev = tasks.get_config("reverse4")
    assert (rev.epochs, rev.batch_size, rev.optimizer["learning_rate"]) == (10_000, 8, 0.1)
    blog = tasks.get_config("mnist", "blog")
    assert blog.arch.activations[0] == {"name": "leaky_relu", "negative_slope": 0.1}
    assert (blog.batch_size, blog.epochs, blog.shuffle, blog.kernel_initializer) == (
        50, 5, False, "uniform")
    tf = tasks.get_config("mnist", "tf-tutorial")
    assert (tf.arch.dropout, tf.optimizer["name"], tf.batch_size) == (0.2, "adam", 32)


@pytest.mark.parametrize("task, config, match", [
    ("cifar", None, r"Unknown task 'cifar'; choose one of \['mnist', 'reverse4', 'xor'\]"),
    ("mnist", "paper", r"Unknown config 'paper' for mnist; choose one of \['blog', 'tf-tutorial'\]"),
])
def test_unknown_task_or_config(task, config, match):
    with pytest.raises(ValueError, match=match):
        tasks.get_config(task, config)


def test_bit_metrics_on_the_blogs_reported_failure():
    """The blog's outputs for inputs starting with 1: the training outputs, last bit 0."""
    _, y = tasks.reverse_data(tasks.REVERSE4_TEST)
    predicted = y.copy()
    predicted[:, 3] = 0.1  # the last output bit always 0
    assert metrics.bit_accuracy(y, predicted).tolist() == [1, 1, 1, 0]
    assert metrics.bit_accuracy(y, predicted).mean() == 0.75
    assert metrics.exact_matches(y, predicted) == 0


def test_classification_report():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    report = metrics.classification_report(labels, probs)
    assert report["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert report["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    f1 = [2 * p * r / (p + r) for p, r in [(1 / 2, 1 / 2), (2 / 3, 1), (1, 1 / 2)]]
    assert report["f1"] == pytest.approx(np.mean(f1))


def test_cli_list_version_and_unknown_command(capsys, monkeypatch):
    from rich.console import Console

    from benchmarks import commands
    from benchmarks.cli import main

    monkeypatch.setattr(commands, "out", Console(width=250))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tf-tutorial" in out and "reverse4" in out and "dropout 0.2" in out
    assert "compare" in out and "keras-tuned" in out and "scratch-jacobian" in out
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and "groundup 0.1.0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["bogus"])
    assert exit_.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err
