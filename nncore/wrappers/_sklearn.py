"""scikit-learn is optional: a clear message when it is missing."""


def require_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError("nncore.wrappers needs scikit-learn, which is not installed: "
                          "pip install scikit-learn (or, from nncore's source folder: pip install '.[sklearn]')"
                          ) from None
