"""TF-IDF + logistic regression per output: the baseline every text-classify run reports.

Features are scikit-learn's TF-IDF of word 1-2 grams and of character 3-5 grams inside
word boundaries (robust to typos and to abbreviations written several ways), sublinear term
frequency, each block L2-normalised, side by side. One multinomial logistic regression per
output, with class weights balanced (macro-F1 is the headline, so a rare class must count).

Saved as JSON (`to_json` / `from_json`): each vectoriser's settings, vocabulary and idf,
each output's classes, coefficients and intercepts; never pickled. Prediction rebuilds the
vectorisers from that JSON and computes the softmax itself, so a saved model predicts
exactly what the fitted one did (coefficients are rounded before any prediction is made).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: features kept per block (the most frequent n-grams of the training notes)
MAX_FEATURES = 8000
SIGNIFICANT_DIGITS = 6
_WORD: dict[str, Any] = {
    "analyzer": "word",
    "ngram_range": [1, 2],
    "min_df": 2,
    "max_features": MAX_FEATURES,
    "sublinear_tf": True,
    "lowercase": True,
    "token_pattern": r"(?u)\b\w[\w'-]*\b",
}
_CHAR: dict[str, Any] = {
    "analyzer": "char_wb",
    "ngram_range": [3, 5],
    "min_df": 2,
    "max_features": MAX_FEATURES,
    "sublinear_tf": True,
    "lowercase": True,
}


def _rounded(values: np.ndarray) -> list[Any]:
    return np.vectorize(lambda v: float(f"{v:.{SIGNIFICANT_DIGITS}g}"))(values).tolist()


def _vectorizer(settings: dict[str, Any], vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    kwargs = {**settings, "ngram_range": tuple(settings["ngram_range"])}
    if vocabulary is not None:
        kwargs["vocabulary"] = vocabulary
        kwargs.pop("max_features", None)
        kwargs.pop("min_df", None)
    return TfidfVectorizer(**kwargs)


class TfidfLogistic:
    """Per-output TF-IDF logistic regression (see the module docstring).

    Args:
        c: inverse regularisation strength of every regression.
        seed: the solver's seed.
    """

    def __init__(self, c: float = 4.0, seed: int = 0):
        self.c = c
        self.seed = seed
        self.vectorizers_: list[Any] = []
        self.settings_: list[dict[str, Any]] = []
        #: output -> {"classes": [...], "coef": (k', F), "intercept": (k',)}; k' <= k
        self.outputs_: dict[str, dict[str, Any]] = {}

    def _features(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import hstack

        return hstack([v.transform(texts) for v in self.vectorizers_]).tocsr()

    def fit(self, texts: Sequence[str], labels: dict[str, Sequence[str | None]]) -> TfidfLogistic:
        """Fit the vectorisers on ``texts`` and one regression per output.

        Args:
            texts: training notes.
            labels: output -> one label per note (None: unlabelled for that output).
        """
        from sklearn.linear_model import LogisticRegression

        self.settings_ = [dict(_WORD), dict(_CHAR)]
        self.vectorizers_ = []
        for settings in self.settings_:
            vectorizer = _vectorizer(settings)
            try:
                vectorizer.fit(texts)
            except ValueError:  # too few notes for min_df: keep every n-gram
                vectorizer = _vectorizer({**settings, "min_df": 1}).fit(texts)
            self.vectorizers_.append(vectorizer)
        features = self._features(texts)
        self.outputs_ = {}
        for name, values in labels.items():
            rows = np.asarray([i for i, v in enumerate(values) if v is not None], np.int64)
            y = np.asarray([values[i] for i in rows], dtype=object).astype(str)
            classes = sorted(set(y.tolist()))
            if len(classes) < 2:
                n_features = features.shape[1]
                self.outputs_[name] = {
                    "classes": classes,
                    "coef": np.zeros((len(classes), n_features)),
                    "intercept": np.zeros(len(classes)),
                }
                continue
            model = LogisticRegression(
                C=self.c, max_iter=2000, class_weight="balanced", random_state=self.seed
            ).fit(features[rows], y)
            coef, intercept = model.coef_, model.intercept_
            if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes
                coef = np.vstack([-coef[0] / 2, coef[0] / 2])
                intercept = np.asarray([-intercept[0] / 2, intercept[0] / 2])
            self.outputs_[name] = {
                "classes": [str(c) for c in model.classes_],
                "coef": coef,
                "intercept": intercept,
            }
        return self.from_json(self.to_json())._copy_into(self)

    def _copy_into(self, other: TfidfLogistic) -> TfidfLogistic:
        other.vectorizers_, other.settings_, other.outputs_ = (
            self.vectorizers_,
            self.settings_,
            self.outputs_,
        )
        return other

    def predict_proba(
        self, texts: Sequence[str], class_names: dict[str, list[str]]
    ) -> dict[str, np.ndarray]:
        """Per output, ``(N, k)`` probabilities over ``class_names[output]`` (that order).

        A class the regression never saw in training gets probability 0.
        """
        features = self._features(texts)
        out = {}
        for name, names in class_names.items():
            fitted = self.outputs_[name]
            probs = np.zeros((len(texts), len(names)))
            if fitted["classes"]:
                z = np.asarray(features @ fitted["coef"].T) + fitted["intercept"]
                z = np.exp(z - z.max(axis=1, keepdims=True))
                z /= z.sum(axis=1, keepdims=True)
                for j, cls in enumerate(fitted["classes"]):
                    if cls in names:
                        probs[:, names.index(cls)] = z[:, j]
            else:
                probs[:] = 1.0 / len(names)
            out[name] = probs
        return out

    def to_json(self) -> dict[str, Any]:
        """The fitted model as plain JSON (see the module docstring)."""
        return {
            "kind": "tfidf-logistic",
            "c": self.c,
            "vectorizers": [
                {
                    "settings": settings,
                    "vocabulary": {str(k): int(v) for k, v in v.vocabulary_.items()},
                    "idf": _rounded(v.idf_),
                }
                for settings, v in zip(self.settings_, self.vectorizers_, strict=True)
            ],
            "outputs": {
                name: {
                    "classes": fitted["classes"],
                    "coef": _rounded(np.asarray(fitted["coef"])),
                    "intercept": _rounded(np.asarray(fitted["intercept"])),
                }
                for name, fitted in self.outputs_.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TfidfLogistic:
        """A model saved by `to_json`.

        Raises:
            KeyError, ValueError, TypeError: the JSON is not such a model.
        """
        model = cls(c=float(data["c"]))
        for block in data["vectorizers"]:
            vectorizer = _vectorizer(block["settings"], block["vocabulary"])
            vectorizer.idf_ = np.asarray(block["idf"], dtype=np.float64)
            model.settings_.append(block["settings"])
            model.vectorizers_.append(vectorizer)
        width = sum(len(b["vocabulary"]) for b in data["vectorizers"])
        for name, fitted in data["outputs"].items():
            coef = np.asarray(fitted["coef"], dtype=np.float64).reshape(-1, width)
            model.outputs_[name] = {
                "classes": [str(c) for c in fitted["classes"]],
                "coef": coef,
                "intercept": np.asarray(fitted["intercept"], dtype=np.float64),
            }
        return model
