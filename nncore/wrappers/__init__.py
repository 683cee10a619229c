"""scikit-learn wrappers, as ``keras.wrappers``: an nncore model as a
scikit-learn estimator, so that ``cross_validate``, ``GridSearchCV``,
``RandomizedSearchCV`` and ``Pipeline`` work on it -- in one process, on
joblib's worker processes, or on a Dask cluster.

    from sklearn.model_selection import cross_validate
    import nncore as keras
    from nncore.wrappers import SKLearnClassifier

    def make_model(X, y, hidden=32):
        model = keras.Sequential([
            keras.Input(shape=(X.shape[1],)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(int(y.max()) + 1, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    clf = SKLearnClassifier(make_model, model_kwargs={"hidden": 64},
                            fit_kwargs={"epochs": 5}, random_state=0)
    cross_validate(clf, X, y, n_jobs=2)

scikit-learn is an optional dependency (``pip install scikit-learn``, or ``pip install '.[sklearn]'`` from nncore's source folder):
``import nncore`` never imports it; the classes below import it on first use.

Module map (one concept each):

    base.py         SKLearnBase: parameters, seeding, fit/predict plumbing, pickling
    classifier.py   SKLearnClassifier (label encoding, predict_proba, accuracy)
    regressor.py    SKLearnRegressor (R^2 score, 1-D or multi-output targets)
    transformer.py  SKLearnTransformer (transform = the model's output)
    transport.py    a model <-> nncore ``.npz`` bytes (what crosses processes)
    workers.py      how many kernel threads a fit uses inside a worker process
"""
from nncore.wrappers.workers import get_worker_threads, set_worker_threads

_LAZY = {
    "SKLearnClassifier": "nncore.wrappers.classifier",
    "SKLearnRegressor": "nncore.wrappers.regressor",
    "SKLearnTransformer": "nncore.wrappers.transformer",
    "SKLearnBase": "nncore.wrappers.base",
}

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer",
           "set_worker_threads", "get_worker_threads"]


def __getattr__(name):
    # the estimator classes subclass scikit-learn's BaseEstimator, so they
    # are imported (with sklearn) only when first asked for
    if name in _LAZY:
        import importlib
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nncore.wrappers' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
