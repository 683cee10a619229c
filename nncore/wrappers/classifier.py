"""SKLearnClassifier: an nncore classifier as a scikit-learn estimator."""
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from nncore.wrappers.base import _FLOATS, SKLearnBase, validate_data


class SKLearnClassifier(ClassifierMixin, SKLearnBase):
    """scikit-learn classifier around an nncore model (``keras.wrappers.SKLearnClassifier``).

    Class labels may be anything ``numpy.unique`` can sort (strings, negative
    or sparse integers...): they are stored in ``classes_`` and the model is
    trained on their indices ``0 .. n_classes-1``.  The ``model`` callable
    receives ``y`` as those indices (so ``int(y.max()) + 1`` is the number of
    classes) and must return a compiled model whose output has one unit per
    class (softmax), or a single unit (sigmoid) for two classes.  The target
    handed to ``model.fit`` follows the loss: indices for
    ``sparse_categorical_crossentropy``, one-hot rows for
    ``categorical_crossentropy`` (and any other loss on several units), a 0/1
    column for a single unit.

    Args:
        model: compiled nncore model, or callable ``model(X=..., y=...,
            **model_kwargs)`` returning one.
        warm_start: bool (default False): reuse the previous fit's weights.
        model_kwargs: dict (default None): extra arguments for the callable.
        fit_kwargs: dict (default None): arguments for ``model.fit``.
        random_state: None or int (default None): seed of the build and fit.

    Attributes:
        model_: the fitted nncore model.   history_: its ``History.history``.
        classes_: the class labels.        n_features_in_: columns of X.

    Example::

        def make_model(X, y):
            m = nncore.Sequential([nncore.Input(shape=(X.shape[1],)),
                                   nncore.layers.Dense(int(y.max()) + 1,
                                                       activation="softmax")])
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            return m

        clf = SKLearnClassifier(make_model, fit_kwargs={"epochs": 10}, random_state=0)
        clf.fit(X, ["cat", "dog", ...]).predict(X)   # -> array of "cat"/"dog"
    """

    def _validate_xy(self, X, y, reset):
        if y is None and reset:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                             "target y is None")
        if y is None:
            return validate_data(self, X, reset=reset, dtype=_FLOATS), None
        X, y = validate_data(self, X, y, reset=reset, dtype=_FLOATS)
        return X, y

    def _encode_target(self, X, y):
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{type(self).__name__}: y must be one column of class "
                             f"labels (binary or multiclass); got a {kind} target")
        if self.warm_start and "classes_" in self.__dict__ and "model_" in self.__dict__:
            # continuing a fit: the classes are those the model was built for
            idx = np.searchsorted(self.classes_, y)
            idx = np.minimum(idx, len(self.classes_) - 1)
            unknown = self.classes_[idx] != y
            if np.any(unknown):
                raise ValueError(f"{type(self).__name__}: warm_start fit got labels "
                                 f"{np.unique(np.asarray(y)[unknown])[:5].tolist()} not "
                                 f"seen in the first fit (classes_={self.classes_.tolist()})")
            return idx.astype(np.int64)
        self.classes_, idx = np.unique(y, return_inverse=True)
        return idx.astype(np.int64).reshape(-1)

    def _check_model_fits_target(self, model, y):
        k, units = len(self.classes_), model.output_units
        if units == k or (units == 1 and k <= 2):
            return
        raise ValueError(f"{type(self).__name__}: the model has {units} output unit(s) but "
                         f"y has {k} classes {self.classes_.tolist()[:10]}; build the "
                         "output layer with one unit per class (the model callable gets "
                         "y as class indices: int(y.max()) + 1 classes)")

    def _target_for_loss(self, model, y):
        units = model.output_units
        if model.loss.target_kind == "sparse":
            return y
        if units == 1:
            return y.astype(model.dtype).reshape(-1, 1)
        onehot = np.zeros((y.shape[0], units), dtype=model.dtype)
        onehot[np.arange(y.shape[0]), y] = 1
        return onehot

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in the
        order of ``classes_`` (the model's output; for a single sigmoid unit,
        the columns [1 - p, p])."""
        out = self._model_output(X)
        if out.shape[1] == 1 and len(self.classes_) == 2:
            p = out[:, 0]
            return np.stack([1 - p, p], axis=1)
        return out

    def predict(self, X):
        """The most probable class label of each row of X."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
