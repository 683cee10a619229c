"""Configs <-> objects: layers, models, losses, optimizers, metrics.

Classes are found only by name in explicit tables -- the built-in ones, those
registered with ``@nncore.saving.register``, and a call's ``custom_objects``
-- never by importing or evaluating anything a file names.  Every config read
from a file is checked for JSON types and sizes before it reaches a
constructor, and the architecture is priced (parameter count) before any
weight is allocated.
"""
import contextlib
import numbers

import numpy as np

from nncore import layers as nn_layers
from nncore import losses as nn_losses
from nncore import metrics as nn_metrics
from nncore import optimizers as nn_optimizers
from nncore import random as nn_random
from nncore.losses import loss as _loss_module
from nncore.saving.format import FormatError, dumps, parse_json

#: refuse architectures with more parameters than this (about 8 GiB of float32)
MAX_PARAMS = 2 ** 31
MAX_DIM = 2 ** 31
MAX_LAYERS = 10_000
LAYER_DTYPES = ("float16", "float32", "float64")

BUILTIN_LAYERS = {c.__name__: c for c in (nn_layers.Dense, nn_layers.Dropout,
                                          nn_layers.Flatten, nn_layers.Activation,
                                          nn_layers.InputLayer, nn_layers.Conv2D,
                                          nn_layers.MaxPooling2D,
                                          nn_layers.AveragePooling2D, nn_layers.SimpleRNN,
                                          nn_layers.LSTM, nn_layers.GRU)}

_REGISTRY = {}        # name -> class, filled by register()
_NAMES = {}           # class -> registered name


def register(cls=None, *, name=None, package=None):
    """Make a custom class loadable by name without passing custom_objects::

        @nncore.saving.register
        class MyLayer(nncore.layers.Layer): ...

        @nncore.saving.register(name="Scaled")
        class ScaledDense(nncore.layers.Dense): ...

    ``package`` is accepted for Keras compatibility and ignored."""
    def deco(c):
        if not isinstance(c, type):
            raise TypeError(f"register: expected a class, got {c!r}")
        key = name or c.__name__
        if not isinstance(key, str) or not key:
            raise ValueError("register: name must be a non-empty string")
        old = _REGISTRY.get(key)
        if old is not None and old is not c:
            _NAMES.pop(old, None)
        _REGISTRY[key] = c
        _NAMES[c] = key
        return c
    return deco(cls) if cls is not None else deco


def register_keras_serializable(package="Custom", name=None):
    """Keras's spelling of ``register`` (the package is ignored)."""
    return register(name=name, package=package)


def get_registered_objects():
    return dict(_REGISTRY)


def class_name_of(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return _NAMES.get(cls, cls.__name__)


def _check_custom_objects(custom_objects):
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, dict):
        raise TypeError("custom_objects must be a dict {'ClassName': class}")
    for k, v in custom_objects.items():
        if not isinstance(k, str):
            raise TypeError(f"custom_objects keys must be class names (str), got {k!r}")
    return custom_objects


def lookup_class(name, base, builtins, custom_objects, what):
    """The class called ``name``: custom_objects, then the registry, then built-ins.
    It must be a subclass of ``base``."""
    if not isinstance(name, str):
        raise FormatError(f"{what}: class_name must be a string, got {type(name).__name__}")
    custom_objects = _check_custom_objects(custom_objects)
    cls = custom_objects.get(name)
    if cls is None:
        cls = _REGISTRY.get(name)
        if cls is not None and not (isinstance(cls, type) and issubclass(cls, base)):
            cls = None
    if cls is None:
        cls = builtins.get(name)
    if cls is None:
        raise FormatError(
            f"unknown {what} class {name!r}. Built-in: {', '.join(sorted(builtins))}. "
            f"For a custom class pass custom_objects={{{name!r}: {name}}} or decorate "
            "it with @nncore.saving.register")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise FormatError(f"custom_objects[{name!r}] must be a subclass of "
                          f"{base.__module__}.{base.__name__}, got {cls!r}")
    return cls


# --------------------------------------------------------------- checks
def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_shape(shape, what, allow_none=True):
    if not isinstance(shape, (list, tuple)) or len(shape) > 16:
        raise FormatError(f"{what} must be a list of at most 16 dimensions, got {shape!r}")
    out = []
    for d in shape:
        if d is None and allow_none:
            out.append(None)
        elif _is_int(d) and 0 < d <= MAX_DIM:
            out.append(int(d))
        else:
            raise FormatError(f"{what}: dimensions must be positive integers "
                              f"(at most {MAX_DIM}), got {shape!r}")
    return tuple(out)


def _check_object(obj, what):
    if not isinstance(obj, dict):
        raise FormatError(f"{what} must be a JSON object, got {type(obj).__name__}")
    for k in obj:
        if not isinstance(k, str):
            raise FormatError(f"{what}: keys must be strings")
    return obj


def _check_class_config(entry, what):
    _check_object(entry, what)
    name = entry.get("class_name")
    if not isinstance(name, str):
        raise FormatError(f"{what} needs a string 'class_name'")
    config = entry.get("config", {})
    if config is None:
        config = {}
    _check_object(config, f"{what} config")
    return name, config


_LAYER_KEY_TYPES = {
    "name": str, "trainable": bool, "units": "posint", "use_bias": bool,
    "activation": (str, type(None)), "rate": (int, float), "seed": ("int", type(None)),
    "batch_size": ("posint", type(None)),
}


def _check_layer_config(cls, config, what):
    """Type checks on the keys nncore's own layers take (custom layers check
    their own)."""
    for key, kind in _LAYER_KEY_TYPES.items():
        if key not in config:
            continue
        v = config[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = False
        for k in kinds:
            if k == "posint":
                ok = ok or (_is_int(v) and 0 < v <= MAX_DIM)
            elif k == "int":
                ok = ok or (_is_int(v) and 0 <= v < 2 ** 63)
            elif k in (int, float):
                ok = ok or (isinstance(v, (int, float)) and not isinstance(v, bool))
            else:
                ok = ok or isinstance(v, k)
        if not ok:
            raise FormatError(f"{what}: invalid value for {key!r}: {v!r}")
    if "name" in config and not config["name"]:
        raise FormatError(f"{what}: name must be a non-empty string")
    if "dtype" in config and config["dtype"] is not None and \
            config["dtype"] not in LAYER_DTYPES:
        raise FormatError(f"{what}: dtype must be one of {LAYER_DTYPES}, got {config['dtype']!r}")
    for key in ("input_shape", "batch_input_shape", "shape"):
        if key in config and config[key] is not None:
            shape = config[key]
            if key == "batch_input_shape":
                if not isinstance(shape, list) or not shape:
                    raise FormatError(f"{what}: invalid batch_input_shape {shape!r}")
                shape = shape[1:]
            _check_shape(shape, f"{what} {key}")
    for key in ("kernel_initializer", "bias_initializer", "kernel_regularizer",
                "bias_regularizer"):
        if key in config and config[key] is not None and not isinstance(config[key], str):
            name, sub = _check_class_config(config[key], f"{what} {key}")
            for k, v in sub.items():
                if not (v is None or isinstance(v, (bool, int, float, str))):
                    raise FormatError(f"{what} {key}: invalid value for {k!r}")
                if _is_int(v) and abs(v) >= 2 ** 63:
                    raise FormatError(f"{what} {key}: {k!r} is out of range")


def _construct(cls, config, what):
    try:
        return cls.from_config(dict(config))
    except FormatError:
        raise
    except Exception as e:      # a bad config must surface as ValueError
        raise FormatError(f"{what}: could not create {cls.__name__} from its config: "
                          f"{type(e).__name__}: {e}") from e


# --------------------------------------------------------------- layers
def serialize_layer(layer):
    return {"class_name": class_name_of(layer), "config": layer.get_config()}


def deserialize_layer(entry, custom_objects=None, what="layer"):
    from nncore.layers.layer import Layer
    name, config = _check_class_config(entry, what)
    cls = lookup_class(name, Layer, BUILTIN_LAYERS, custom_objects, "layer")
    what = f"{what} ({name})"
    if cls in BUILTIN_LAYERS.values() or any(issubclass(cls, b) for b in BUILTIN_LAYERS.values()):
        _check_layer_config(cls, config, what)
    return _construct(cls, config, what)


# --------------------------------------------------------------- models
def serialize_model(model):
    """{"class_name": "Sequential", "config": {...}} of a Sequential."""
    from nncore.models.sequential import Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"nncore can serialize Sequential models only, got "
                        f"{type(model).__name__}")
    shape = model.input_shape
    return {"class_name": "Sequential",
            "config": {"name": model.name, "trainable": model.trainable,
                       "input_shape": None if shape is None else list(shape[1:]),
                       "layers": [serialize_layer(l) for l in model.layers]}}


def model_to_json(model, **kwargs):
    return dumps(serialize_model(model), **kwargs)


def _count_params(layers, input_shape, what="model"):
    """Parameters the built model will hold (built-in layers priced exactly,
    custom layers not at all); raises FormatError beyond MAX_PARAMS."""
    if input_shape is None:
        return 0
    shape = (None,) + tuple(input_shape)
    total = 0
    for i, layer in enumerate(layers):
        if isinstance(layer, nn_layers.InputLayer):
            shape = layer.shape
            continue
        if isinstance(layer, nn_layers.Dense):
            fan_in = shape[-1] if len(shape) >= 1 else None
            if not _is_int(fan_in):
                return total       # the build will report the problem
            total += fan_in * layer.units + (layer.units if layer.use_bias else 0)
            shape = tuple(shape[:-1]) + (layer.units,)
        elif isinstance(layer, nn_layers.Conv2D):
            if len(shape) != 4 or not _is_int(shape[-1]):
                return total       # the build will report the problem
            kh, kw = layer.kernel_size
            total += kh * kw * shape[-1] * layer.filters + (layer.filters if layer.use_bias else 0)
            shape = tuple(layer.compute_output_shape(shape))
        elif isinstance(layer, nn_layers.Flatten):
            rest = shape[1:]
            size = None
            if all(_is_int(d) for d in rest):
                size = 1
                for d in rest:
                    size *= d
            shape = (shape[0], size)
        elif isinstance(layer, (nn_layers.Dropout, nn_layers.Activation)):
            pass
        else:
            try:
                shape = tuple(layer.compute_output_shape(shape))
            except Exception:
                return total
        if total > MAX_PARAMS:
            raise FormatError(f"{what}: the architecture implies more than {MAX_PARAMS} "
                              f"parameters (at layer {i}, {layer.name!r}): refused")
    return total


def sequential_from_config(config, custom_objects=None, model_cls=None, max_params=None,
                           fresh_names=False):
    """A Sequential from its config (``Sequential.get_config()`` or the
    'config' part of ``to_json()``), validated.  ``max_params`` bounds the
    parameter count further (e.g. by what a weights file holds)."""
    from nncore.models.sequential import Sequential
    model_cls = model_cls or Sequential
    _check_object(config, "model config")
    layers_cfg = config.get("layers")
    if not isinstance(layers_cfg, list):
        raise FormatError("model config: 'layers' must be a list")
    if len(layers_cfg) > MAX_LAYERS:
        raise FormatError(f"model config: too many layers ({len(layers_cfg)})")
    name = config.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise FormatError("model config: name must be a non-empty string")
    trainable = config.get("trainable", True)
    if not isinstance(trainable, bool):
        raise FormatError("model config: trainable must be true or false")
    input_shape = config.get("input_shape")
    if input_shape is not None:
        input_shape = _check_shape(input_shape, "model config input_shape")
    if fresh_names:
        name = None
    layers = []
    for i, entry in enumerate(layers_cfg):
        if fresh_names and isinstance(entry, dict) and isinstance(entry.get("config"), dict):
            entry = {**entry, "config": {k: v for k, v in entry["config"].items() if k != "name"}}
        layers.append(deserialize_layer(entry, custom_objects, what=f"layer {i}"))
    first_shape = input_shape
    if first_shape is None and layers and getattr(layers[0], "_input_shape_arg", None):
        first_shape = layers[0]._input_shape_arg
    n = _count_params(layers, first_shape)
    if max_params is not None and n > max_params:
        raise FormatError(f"the architecture needs {n} parameters but the file holds "
                          f"only {max_params} weight values: refused")
    try:
        model = model_cls(name=name, trainable=trainable)
        for layer in layers:
            model.add(layer)
        if input_shape is not None and layers:
            model.build((None,) + tuple(input_shape))
    except FormatError:
        raise
    except Exception as e:
        raise FormatError(f"could not build the model from its config: "
                          f"{type(e).__name__}: {e}") from e
    return model


def deserialize_model(entry, custom_objects=None, **kwargs):
    name, config = _check_class_config(entry, "model")
    if name != "Sequential":
        raise FormatError(f"unknown model class {name!r}: nncore loads Sequential models")
    return sequential_from_config(config, custom_objects, **kwargs)


def model_from_json(json_string, custom_objects=None):
    """A new model (freshly initialised weights) from ``model.to_json()``."""
    return deserialize_model(parse_json(json_string, "model JSON"), custom_objects)


@contextlib.contextmanager
def isolated_rng():
    """Run with a throwaway generator in place of nncore's global one, so that
    building a model to load weights into does not move the global random
    state (the shuffles of a resumed fit stay those of an uninterrupted one)."""
    saved = nn_random._rng
    nn_random._rng = np.random.default_rng(0)
    try:
        yield
    finally:
        nn_random._rng = saved


def clone_model(model, input_tensors=None, clone_function=None):
    """Same architecture, new layers with new names and freshly initialised
    weights (drawn from nncore's global generator, as Keras does)."""
    from nncore.models.sequential import Sequential
    if input_tensors is not None:
        raise ValueError("clone_model: input_tensors is not supported by nncore")
    if not isinstance(model, Sequential):
        raise TypeError(f"clone_model: expected a Sequential, got {type(model).__name__}")
    new_layers = []
    for layer in model.layers:
        if clone_function is not None:
            new = clone_function(layer)
        else:
            cfg = {k: v for k, v in layer.get_config().items() if k != "name"}
            new = type(layer).from_config(cfg)
        new_layers.append(new)
    clone = Sequential(trainable=model.trainable)
    for layer in new_layers:
        clone.add(layer)
    if model.input_shape is not None and new_layers:
        clone.build(model.input_shape)
    return clone


# --------------------------------------------------------------- compile
def serialize_metric_spec(spec):
    if isinstance(spec, str):
        return spec
    if isinstance(spec, nn_metrics.Metric):
        return {"class_name": class_name_of(spec), "config": spec.get_config()}
    if isinstance(spec, type) and issubclass(spec, nn_metrics.Metric):
        return {"class_name": class_name_of(spec), "config": None}
    raise TypeError(f"cannot save the metric {spec!r}: use a name, an "
                    "nncore.metrics class or object")


def deserialize_metric_spec(spec, custom_objects=None, what="metric"):
    if isinstance(spec, str):
        if len(spec) > 200:
            raise FormatError(f"{what}: name too long")
        return spec
    if not isinstance(spec, dict):
        raise FormatError(f"{what} must be a name or a {{class_name, config}} object")
    name = spec.get("class_name")
    cls = lookup_class(name, nn_metrics.Metric, nn_metrics._BY_CLASS, custom_objects, "metric")
    if spec.get("config") is None:
        return cls
    _, config = _check_class_config(spec, what)
    return _construct(cls, config, what)


def serialize_compile(model):
    if not model.compiled:
        return None
    return {"optimizer": {"class_name": class_name_of(model.optimizer),
                          "config": model.optimizer.get_config()},
            "loss": None if model.loss is None else
            {"class_name": class_name_of(model.loss), "config": model.loss.get_config()},
            "metrics": [serialize_metric_spec(m) for m in model._metric_specs],
            "weighted_metrics": [serialize_metric_spec(m)
                                 for m in model._weighted_metric_specs]}


def deserialize_optimizer(entry, custom_objects=None):
    name, config = _check_class_config(entry, "optimizer")
    cls = lookup_class(name, nn_optimizers.Optimizer, nn_optimizers._BY_CLASS,
                       custom_objects, "optimizer")
    for k, v in config.items():
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise FormatError(f"optimizer config: invalid value for {k!r}")
    return _construct(cls, config, f"optimizer ({name})")


def deserialize_loss(entry, custom_objects=None):
    name, config = _check_class_config(entry, "loss")
    cls = lookup_class(name, nn_losses.Loss, _loss_module._BY_CLASS,
                       custom_objects, "loss")
    return _construct(cls, config, f"loss ({name})")


def compile_from_config(model, cfg, custom_objects=None):
    _check_object(cfg, "compile config")
    opt = deserialize_optimizer(cfg.get("optimizer"), custom_objects)
    loss = cfg.get("loss")
    loss = None if loss is None else deserialize_loss(loss, custom_objects)
    metrics = cfg.get("metrics") or []
    if not isinstance(metrics, list) or len(metrics) > 1000:
        raise FormatError("compile config: metrics must be a list")
    metrics = [deserialize_metric_spec(m, custom_objects, f"metric {i}")
               for i, m in enumerate(metrics)]
    weighted = cfg.get("weighted_metrics") or []
    if not isinstance(weighted, list) or len(weighted) > 1000:
        raise FormatError("compile config: weighted_metrics must be a list")
    weighted = [deserialize_metric_spec(m, custom_objects, f"weighted metric {i}")
                for i, m in enumerate(weighted)]
    try:
        model.compile(optimizer=opt, loss=loss, metrics=metrics, weighted_metrics=weighted)
    except Exception as e:
        raise FormatError(f"could not compile the loaded model: {type(e).__name__}: {e}") from e
    return model
