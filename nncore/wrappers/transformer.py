"""SKLearnTransformer: an nncore model whose output is a feature transform."""
import numpy as np
from sklearn.base import TransformerMixin

from nncore.wrappers.base import _FLOATS, SKLearnBase, validate_data


class SKLearnTransformer(TransformerMixin, SKLearnBase):
    """scikit-learn transformer around an nncore model
    (``keras.wrappers.SKLearnTransformer``): ``transform(X)`` is the fitted
    model's output, e.g. a learned projection used as a ``Pipeline`` step.

    ``fit(X, y)`` trains the model to map X to y (y 1-D or 2-D, numeric);
    ``fit(X)`` with no y trains it to reproduce X (an autoencoder whose
    output has X's width).  The ``model`` callable receives the 2-D target.

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
                                   nncore.layers.Dense(y.shape[1], activation="tanh")])
            m.compile(optimizer="adam", loss="mse")
            return m

        features = SKLearnTransformer(make_model, random_state=0).fit_transform(X, Y)
    """

    def _validate_xy(self, X, y, reset):
        if y is None:
            return validate_data(self, X, reset=reset, dtype=_FLOATS), None
        return validate_data(self, X, y, reset=reset, dtype=_FLOATS, multi_output=True,
                             y_numeric=True)

    def fit(self, X, y=None, sample_weight=None, **kwargs):
        """Train the model on (X, y), or on (X, X) when y is None (see
        ``SKLearnBase.fit`` for the other arguments)."""
        self._fit_on_x = y is None
        return super().fit(X, y, sample_weight=sample_weight, **kwargs)

    def _encode_target(self, X, y):
        y = np.asarray(X if y is None else y)
        if y.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: y must be 1-D or 2-D, got shape {y.shape}")
        return y.reshape(y.shape[0], -1).astype(np.float64, copy=False)

    def _check_model_fits_target(self, model, y):
        if model.output_units != y.shape[1]:
            what = "X's columns (fit without y reproduces X)" if self._fit_on_x \
                else "y's columns"
            raise ValueError(f"{type(self).__name__}: the model has {model.output_units} "
                             f"output unit(s) but the target has {y.shape[1]}: {what}")

    def transform(self, X):
        """The fitted model's output for X, shape (n_samples, units)."""
        return self._model_output(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        # the output has the model's dtype (float32 unless built otherwise)
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
