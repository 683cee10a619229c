"""Per-layer-kind converters between Keras layer configs and nncore layers.

Each layer kind converts itself, in its own module (the layer-kind contract,
``nncore/layers/layer.py``):

* ``cls.from_keras(config, what)``: a Keras config (Keras 2 or 3 spelling)
  -> the keyword arguments of the nncore layer.  Only keys it understands
  are read; a key that would change the layer's maths and that nncore lacks
  (a constraint, an activity regularizer, channels_first) is an error naming
  the layer, never silently dropped.
* ``layer.to_keras()``: an nncore layer -> the Keras 3 config TensorFlow loads.

This module holds what those share -- the readers and writers of Keras's
config entries (dtype, activation, initializer, regularizer, pairs, padding)
-- and ``CONVERTERS``, the registered kinds as the file code looks them up.
Nothing here imports or evaluates anything a file names.
"""
from collections.abc import Mapping

from nncore.ops.activations import ACTIVATIONS  # the kernels' activations (Keras names)
from nncore.saving.format import FormatError
KERAS_INITIALIZERS = ("GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
                      "RandomNormal", "RandomUniform", "Zeros", "Ones", "Constant",
                      "VarianceScaling", "Orthogonal")


def policy(dtype):
    """Keras 3's dtype entry for a layer config."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": str(dtype)},
            "registered_name": None}


def keras_object(module, class_name, config):
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": None}


# --------------------------------------------------------------- reading helpers
def read_dtype(value, what):
    """'float32', a DTypePolicy object (Keras 3) or None -> 'float32'/'float64'."""
    if value is None:
        return None
    if isinstance(value, dict):
        cfg = value.get("config")
        if value.get("class_name") not in ("DTypePolicy", "Policy") or not isinstance(cfg, dict):
            raise FormatError(f"{what}: unsupported dtype policy {value.get('class_name')!r}")
        value = cfg.get("name")
    if value not in ("float32", "float64"):
        raise FormatError(f"{what}: dtype {value!r} is not supported by nncore "
                          "(float32 or float64)")
    return value


def read_activation(value, what):
    if value is None:
        return "linear"
    if isinstance(value, dict):     # Keras 3 may write {"class_name": "function", "config": "relu"}
        if value.get("class_name") == "function" and isinstance(value.get("config"), str):
            value = value["config"]
        else:
            raise FormatError(f"{what}: activation {value.get('class_name')!r} is not "
                              "a built-in activation name")
    if value not in ACTIVATIONS:
        raise FormatError(f"{what}: activation {value!r} is not supported by nncore "
                          f"(supported: {', '.join(ACTIVATIONS)})")
    return value


def read_initializer(value, what):
    """A Keras initializer entry -> an nncore initializer spec; unknown kinds
    fall back to the default (the weights come from the file anyway)."""
    if isinstance(value, str):
        return value if value in _INIT_NAMES else None
    if isinstance(value, dict) and value.get("class_name") in KERAS_INITIALIZERS:
        cfg = value.get("config") or {}
        if not isinstance(cfg, dict):
            return None
        keep = {"seed", "mean", "stddev", "minval", "maxval", "value", "scale", "mode",
                "distribution", "gain"}
        return {"class_name": value["class_name"],
                "config": {k: v for k, v in cfg.items() if k in keep
                           and (v is None or isinstance(v, (int, float, str)))}}
    return None


_INIT_NAMES = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
               "random_normal", "random_uniform", "zeros", "ones", "orthogonal")


def read_regularizer(value, what):
    if value is None:
        return None
    if isinstance(value, dict) and value.get("class_name") in ("L1", "L2", "L1L2"):
        cfg = value.get("config") or {}
        out = {}
        for k in ("l1", "l2"):
            v = cfg.get(k)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                    raise FormatError(f"{what}: invalid regularizer factor {k}={v!r}")
                out[k] = float(v)
        return {"class_name": value["class_name"], "config": out}
    raise FormatError(f"{what}: regularizer {value!r} is not supported by nncore "
                      "(L1, L2, L1L2)")


def require_absent(config, keys, what):
    """Keys whose non-default value changes the maths and nncore lacks."""
    for k in keys:
        if config.get(k) not in (None, False):
            raise FormatError(f"{what}: {k}={config[k]!r} is not supported by nncore")


def common(config, what):
    out = {}
    name = config.get("name")
    if name is not None:
        if not isinstance(name, str) or not name or len(name) > 200:
            raise FormatError(f"{what}: invalid layer name {name!r}")
        out["name"] = name
    if "trainable" in config:
        if not isinstance(config["trainable"], bool):
            raise FormatError(f"{what}: trainable must be true or false")
        out["trainable"] = config["trainable"]
    dtype = read_dtype(config.get("dtype"), what)
    if dtype is not None:
        out["dtype"] = dtype
    return out


def common_keras(layer):
    return {"name": layer.name, "trainable": bool(layer.trainable),
            "dtype": policy(layer.dtype)}


def _shape_list(shape):
    return None if shape is None else [None if d is None else int(d) for d in shape]


# --------------------------------------------------------------- writing helpers
def initializer_keras(init):
    from nncore import initializers
    spec = initializers.serialize(init)
    return keras_object("keras.initializers", spec["class_name"], spec["config"])


def regularizer_keras(reg):
    if reg is None:
        return None
    from nncore import regularizers
    spec = regularizers.serialize(reg)
    return keras_object("keras.regularizers", spec["class_name"], spec["config"])


def pair(v, what, key):
    """A Keras int-or-pair entry (kernel_size, strides, ...) as a tuple of two."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v, v]
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and
            all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 2 ** 16 for d in v)):
        raise FormatError(f"{what}: invalid {key} {v!r}")
    return tuple(v)


def channels_last(c, what):
    if c.get("data_format") not in (None, "channels_last"):
        raise FormatError(f"{what}: data_format={c['data_format']!r} is not supported "
                          "by nncore (channels_last)")


def padding(c, what):
    p = c.get("padding", "valid")
    if p not in ("valid", "same"):
        raise FormatError(f"{what}: padding {p!r} is not supported (valid or same)")
    return p


# --------------------------------------------------------------- the kinds
class LayerKind:
    """How one Keras layer class maps onto an nncore layer class: read off
    the class itself (the layer-kind contract, nncore/layers/layer.py)."""

    def __init__(self, nn_class):
        self.keras_name, self.nn_class = nn_class.keras_name, nn_class
        self.to_nncore = nn_class.from_keras
        #: Keras writes a build_config for layers with a build() of their own
        self.has_build = nn_class.keras_has_build

    @staticmethod
    def to_keras(layer):
        return layer.to_keras()


class _Converters(Mapping):
    """Keras class name -> LayerKind, for every registered layer kind that
    Keras files can hold (it has ``from_keras``): a live view of
    ``LAYER_KINDS``, so a kind registered later is found too."""

    def _kinds(self):
        from nncore.layers.layer import LAYER_KINDS
        return {name: cls for name, cls in LAYER_KINDS.items() if cls.from_keras is not None}

    def __getitem__(self, name):
        return LayerKind(self._kinds()[name])

    def __iter__(self):
        return iter(self._kinds())

    def __len__(self):
        return len(self._kinds())


CONVERTERS = _Converters()


def kind_of_layer(layer):
    """The LayerKind that writes ``layer`` (its exact class), or None."""
    cls = type(layer)
    if cls.__dict__.get("keras_name") and cls.from_keras is not None:
        return LayerKind(cls)
    return None


def snake_case(name):
    """Keras's name for a layer class inside the weights file ('MaxPooling2D'
    -> 'max_pooling2d'), as keras.src.utils.naming.to_snake_case computes it."""
    import re
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def weight_paths(class_names):
    """Keras 3 addresses a Sequential's layers in model.weights.h5 by class,
    not by (auto-generated) name: 'layers/dense', 'layers/dense_1', ..."""
    used, out = {}, []
    for cname in class_names:
        base = snake_case(cname)
        if base in used:
            used[base] += 1
            out.append(f"layers/{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(f"layers/{base}")
    return out
