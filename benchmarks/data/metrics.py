"""Task metrics, computed with NumPy from predictions: nothing here trains."""

from __future__ import annotations

import numpy as np


def bits(y_pred: np.ndarray) -> np.ndarray:
    """Outputs rounded to 0/1, as the blog reads a sigmoid net's answer."""
    return (np.asarray(y_pred) >= 0.5).astype(np.int8)


def bit_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per output bit: the fraction of samples whose rounded bit is right, (K,)."""
    return (bits(y_pred) == np.asarray(y_true)).mean(axis=0)


def exact_matches(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    """How many samples have every rounded output bit right."""
    return int((bits(y_pred) == np.asarray(y_true)).all(axis=1).sum())


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """counts[i, j] = how many samples of class i were predicted as class j."""
    return np.bincount(k * np.asarray(labels, np.int64) + predicted, minlength=k * k).reshape(k, k)


def classification_report(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy and macro precision, recall and F1 from class probabilities (n, K)."""
    k = probabilities.shape[1]
    cm = confusion_matrix(labels, probabilities.argmax(axis=1), k)
    tp = np.diag(cm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / cm.sum(axis=0))
        recall = np.nan_to_num(tp / cm.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {"accuracy": float(tp.sum() / cm.sum()), "precision": float(precision.mean()),
            "recall": float(recall.mean()), "f1": float(f1.mean()), "confusion": cm}
