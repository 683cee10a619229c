"""SKLearnBase: what the three scikit-learn wrappers share.

Parameters (Keras 3's ``keras.wrappers`` constructor, plus ``random_state``):

    model         a callable ``model(X=..., y=..., **model_kwargs)`` returning
                  a compiled nncore model, or a compiled model (cloned with
                  fresh weights before each fit unless ``warm_start``)
    warm_start    reuse the weights of the previous fit (and, for a model
                  instance, train that very instance)
    model_kwargs  keyword arguments for the ``model`` callable
    fit_kwargs    keyword arguments for ``model.fit`` (``epochs``,
                  ``batch_size``, ``callbacks``...); those given to the
                  wrapper's ``fit`` take precedence
    random_state  None, or an int: the seed of nncore's generator while the
                  model is built and fitted, so that the same seed gives the
                  same fitted model in any process (an nncore addition)

What the wrapper adds to a plain ``model.fit``:

* Seeds.  With ``random_state=k`` the model is built and trained under a
  private nncore generator seeded with ``k`` (``nncore.random``'s global
  generator is swapped in and restored), so a fit does not depend on what
  ran before it in the same process -- which is what makes ``n_jobs=1`` and
  ``n_jobs=2`` give the same scores: joblib reuses worker processes, and
  the global generator of a worker has seen other fits.  Without a
  ``random_state``, seed inside the ``model`` callable
  (``nncore.utils.set_random_seed``) for the same effect.  The swap is per
  process, so run concurrent fits in processes (joblib's default ``loky``
  backend, Dask workers), not threads.
* Transport.  Pickling the wrapper (how joblib and Dask send it to a worker,
  or ``joblib.dump``) stores every nncore model in it as the bytes of its
  ``.npz`` file (``nncore.wrappers.transport``); no model object is pickled.
* Threads in workers: see ``nncore.wrappers.workers``.
* ``verbose`` defaults to 0 for fit and predict (a progress bar per
  cross-validation fold is noise); put ``verbose`` in ``fit_kwargs`` to see it.

scikit-learn's estimator checks (``parametrize_with_checks``, run by
``tests/test_wrappers.py``) pass for all three wrappers except
``check_sample_weight_equivalence_on_dense_data``: in minibatch training a
sample weight of 2 scales that sample's loss inside its batch, while a
repeated sample changes the batches, their number and the shuffle, so the
two fits agree only to about 1e-4 (the check asks for 1e-7).
"""
import contextlib
import copy
import numbers

import numpy as np

from nncore.wrappers._sklearn import require_sklearn

require_sklearn()

from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.utils.validation import _check_sample_weight, check_is_fitted  # noqa: E402

from nncore import random as nn_random  # noqa: E402
from nncore.models.rollback import all_or_nothing  # noqa: E402
from nncore.wrappers import transport, workers  # noqa: E402

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

_FLOATS = (np.float32, np.float64)


def validate_data(estimator, *args, **kwargs):
    """scikit-learn's input validation (sets/checks ``n_features_in_``)."""
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)  # pragma: no cover


def _model_class():
    from nncore.models.model import Model
    return Model


class _NpzModel:
    """A model in transit: the bytes of its ``.npz`` file."""
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __getstate__(self):
        return self.data

    def __setstate__(self, data):
        self.data = data


class SKLearnBase(BaseEstimator):
    """Base of SKLearnClassifier, SKLearnRegressor and SKLearnTransformer
    (see the module docstring for the parameters)."""

    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None, *,
                 random_state=None):
        # scikit-learn's rule: __init__ stores its arguments and nothing else
        # (checked when fit runs), so that get_params/set_params/clone work
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs
        self.random_state = random_state

    # ------------------------------------------------------ subclass hooks
    def _validate_xy(self, X, y, reset):
        """Validated (X, y); y may be None for the transformer."""
        raise NotImplementedError

    def _encode_target(self, X, y):
        """The target as the model callable sees it (sets fitted attributes)."""
        raise NotImplementedError

    def _check_model_fits_target(self, model, y):
        raise NotImplementedError

    def _target_for_loss(self, model, y):
        """The encoded target in the form the model's loss takes."""
        return y

    # ------------------------------------------------------ parameters
    def _check_params(self):
        Model = _model_class()
        if not (isinstance(self.model, Model) or callable(self.model)):
            raise TypeError(f"{type(self).__name__}: model must be a compiled nncore model "
                            f"or a callable returning one, got {type(self.model).__name__}")
        for name in ("model_kwargs", "fit_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{type(self).__name__}: {name} must be a dict or None, "
                                f"got {type(value).__name__}")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: warm_start must be True or False, "
                            f"got {self.warm_start!r}")
        return self._seed()

    def _seed(self):
        """The int seed of this fit (None: nncore's global generator)."""
        rs = self.random_state
        if rs is None:
            return None
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(0, 2 ** 31 - 1))
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(0, 2 ** 63 - 1))
        if isinstance(rs, bool) or not isinstance(rs, numbers.Integral) or rs < 0:
            raise ValueError(f"{type(self).__name__}: random_state must be None, a "
                             f"non-negative int or a NumPy generator, got {rs!r}")
        return int(rs)

    # ------------------------------------------------------ context
    def _threads(self):
        # set by __setstate__ when this wrapper was unpickled in another
        # process than the one that pickled it (a joblib or Dask worker)
        return workers.kernel_threads(self.__dict__.get("_nncore_worker_threads"))

    # ------------------------------------------------------ the model
    def _build_model(self, X, y):
        Model = _model_class()
        if self.warm_start and isinstance(self.__dict__.get("model_"), Model):
            return self.model_
        if isinstance(self.model, Model):
            if self.warm_start:
                model = self.model  # Keras: a warm start trains the given model
            else:
                model = self._clone_compiled(self.model)
        else:
            model = self.model(X=X, y=y, **(self.model_kwargs or {}))
        if not isinstance(model, Model):
            raise TypeError(f"{type(self).__name__}: the model callable must return an "
                            f"nncore model, got {type(model).__name__}")
        if not model.compiled or model.loss is None:
            raise ValueError(f"{type(self).__name__}: the model must be compiled with a "
                             "loss before fitting (call model.compile(...) in the callable)")
        return model

    def _clone_compiled(self, model):
        from nncore.saving import serialization as S
        if not model.compiled:
            raise ValueError(f"{type(self).__name__}: a model given as an instance must "
                             "already be compiled (Keras's rule); or pass a callable")
        new = S.clone_model(model)
        S.compile_from_config(new, S.serialize_compile(model))
        return new

    # ------------------------------------------------------ fit / predict
    def fit(self, X, y=None, sample_weight=None, **kwargs):
        """Build (or reuse, with ``warm_start``) the model and train it.

        Args:
            X: array-like (n_samples, n_features).
            y: targets (see the subclass).
            sample_weight: optional per-sample weights, passed to ``model.fit``.
            **kwargs: more ``model.fit`` arguments; they override ``fit_kwargs``.

        Returns:
            self, with ``model_`` (the fitted model) and ``history_`` (the
            ``History.history`` dict of the fit).
        """
        # validating X and y sets n_features_in_ and classes_ before the model
        # may still refuse them: a refused fit puts the fitted ones back
        with all_or_nothing(self):
            seed = self._check_params()
            X, y = self._validate_xy(X, y, reset=True)
            fit_args = {"verbose": 0, **(self.fit_kwargs or {}), **kwargs}
            if sample_weight is not None:
                if "sample_weight" in fit_args:
                    raise TypeError(f"{type(self).__name__}.fit: sample_weight given twice "
                                    "(as an argument and in fit_kwargs)")
                fit_args["sample_weight"] = _check_sample_weight(sample_weight, X,
                                                                 dtype=np.float64)
            with self._threads(), _seeded(seed):
                target = self._encode_target(X, y)
                model = self._build_model(X, target)
                self._check_model_fits_target(model, target)
                history = model.fit(X, self._target_for_loss(model, target), **fit_args)
            self.model_ = model
            self.history_ = {k: list(v) for k, v in history.history.items()}
        return self

    def _model_output(self, X):
        """The fitted model's output for X, shape (n_samples, units)."""
        check_is_fitted(self, "model_")
        X, _ = self._validate_xy(X, None, reset=False)
        with self._threads():
            return self.model_.predict(X, verbose=0)

    def __sklearn_is_fitted__(self):
        return "model_" in self.__dict__

    # ------------------------------------------------------ pickling
    def __getstate__(self):
        Model = _model_class()
        state = dict(self.__dict__)
        for key in ("model", "model_"):
            if isinstance(state.get(key), Model):
                state[key] = _NpzModel(transport.model_to_bytes(state[key]))
        state["fit_kwargs"] = _detach_callbacks(state.get("fit_kwargs"), Model)
        # "home" is the process that first pickled this wrapper (the main
        # process of a search); a worker sending it back keeps that home
        if "_nncore_home" not in state:
            state["_nncore_home"] = workers.process_identity()
            state["_nncore_worker_threads"] = workers.get_worker_threads()
        return state

    def __setstate__(self, state):
        state = dict(state)
        for key in ("model", "model_"):
            if isinstance(state.get(key), _NpzModel):
                state[key] = transport.model_from_bytes(state[key].data)
        home = state.get("_nncore_home")
        if home is not None and tuple(home) == workers.process_identity():
            # back where it was made (an estimator returned by a worker)
            state.pop("_nncore_home")
            state.pop("_nncore_worker_threads", None)
        self.__dict__.update(state)


@contextlib.contextmanager
def _seeded(seed):
    """nncore's global generator replaced by one seeded with ``seed`` (and
    restored afterwards); nothing changes when seed is None."""
    if seed is None:
        yield
        return
    saved = nn_random._rng
    nn_random._rng = np.random.default_rng(seed)
    try:
        yield
    finally:
        nn_random._rng = saved


def _detach_callbacks(fit_kwargs, Model):
    """fit_kwargs whose callbacks no longer point at a model (a callback
    used in a fit keeps its model; that model must not be pickled)."""
    if not fit_kwargs or not fit_kwargs.get("callbacks"):
        return fit_kwargs
    callbacks = []
    for cb in fit_kwargs["callbacks"]:
        if isinstance(getattr(cb, "_model", None), Model):
            cb = copy.copy(cb)
            cb._model = None
        callbacks.append(cb)
    return {**fit_kwargs, "callbacks": callbacks}
