"""SKLearnRegressor: an nncore regression model as a scikit-learn estimator."""
import numpy as np
from sklearn.base import RegressorMixin

from nncore.wrappers.base import _FLOATS, SKLearnBase, validate_data


class SKLearnRegressor(RegressorMixin, SKLearnBase):
    """scikit-learn regressor around an nncore model (``keras.wrappers.SKLearnRegressor``).

    ``y`` is one target (1-D) or several (2-D, one column per output unit).
    The ``model`` callable receives ``y`` as a 2-D float array (n_samples,
    n_targets); ``predict`` returns 1-D values when ``y`` was 1-D.
    ``score`` is R^2, as for every scikit-learn regressor.

    Args:
        model: compiled nncore model, or callable ``model(X=..., y=...,
            **model_kwargs)`` returning one.
        warm_start: bool (default False): reuse the previous fit's weights.
        model_kwargs: dict (default None): extra arguments for the callable.
        fit_kwargs: dict (default None): arguments for ``model.fit``.
        random_state: None or int (default None): seed of the build and fit.

    Example::

        def make_model(X, y):
            m = nncore.Sequential([nncore.Input(shape=(X.shape[1],)),
                                   nncore.layers.Dense(16, activation="relu"),
                                   nncore.layers.Dense(y.shape[1])])
            m.compile(optimizer="adam", loss="mse")
            return m

        reg = SKLearnRegressor(make_model, fit_kwargs={"epochs": 50}, random_state=0)
        reg.fit(X, y).score(X, y)
    """

    def _validate_xy(self, X, y, reset):
        if y is None and reset:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                             "target y is None")
        if y is None:
            return validate_data(self, X, reset=reset, dtype=_FLOATS), None
        return validate_data(self, X, y, reset=reset, dtype=_FLOATS, multi_output=True,
                             y_numeric=True)

    def _encode_target(self, X, y):
        y = np.asarray(y)
        if y.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: y must be 1-D or 2-D, got shape {y.shape}")
        self._y_ndim = y.ndim
        return y.reshape(y.shape[0], -1).astype(np.float64, copy=False)

    def _check_model_fits_target(self, model, y):
        if model.output_units != y.shape[1]:
            raise ValueError(f"{type(self).__name__}: the model has {model.output_units} "
                             f"output unit(s) but y has {y.shape[1]} target column(s)")

    def predict(self, X):
        """The model's predictions as float64 (scikit-learn's convention for
        regressors): shape (n_samples,) for a 1-D y, else (n_samples, n_targets)."""
        out = self._model_output(X).astype(np.float64)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags
