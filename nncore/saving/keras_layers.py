"""Per-layer-kind converters between Keras layer configs and nncore layers.

One table, ``CONVERTERS``: Keras class name -> ``LayerKind`` with

* ``to_nncore(config, what)``: a Keras config (Keras 2 or 3 spelling) -> the
  keyword arguments of the nncore layer.  Only keys we understand are read;
  a key that would change the layer's maths and that nncore lacks (a
  constraint, an activity regularizer, channels_first) is an error naming the
  layer, never silently dropped.
* ``to_keras(layer)``: an nncore layer -> the Keras 3 config TensorFlow loads.

Adding a layer kind is one ``LayerKind(...)`` entry; the conv/pooling kinds
register themselves only when ``nncore.layers`` has those classes.  Nothing
here imports or evaluates anything a file names.
"""
from nncore import layers as nn_layers
from nncore.saving.format import FormatError

#: activations nncore's kernels compute (Keras names)
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
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


# --------------------------------------------------------------- the kinds
class LayerKind:
    """How one Keras layer class maps onto an nncore layer class."""

    def __init__(self, keras_name, nn_class, to_nncore, to_keras, has_build=True):
        self.keras_name, self.nn_class = keras_name, nn_class
        self.to_nncore, self.to_keras = to_nncore, to_keras
        #: Keras writes a build_config for layers with a build() of their own
        self.has_build = has_build


def _dense_in(c, what):
    require_absent(c, ("kernel_constraint", "bias_constraint", "activity_regularizer",
                       "lora_rank", "quantization_config"), what)
    units = c.get("units")
    if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= 2 ** 31:
        raise FormatError(f"{what}: units must be a positive integer, got {units!r}")
    use_bias = c.get("use_bias", True)
    if not isinstance(use_bias, bool):
        raise FormatError(f"{what}: use_bias must be true or false")
    out = dict(common(c, what), units=units, activation=read_activation(c.get("activation"), what),
               use_bias=use_bias,
               kernel_regularizer=read_regularizer(c.get("kernel_regularizer"), what),
               bias_regularizer=read_regularizer(c.get("bias_regularizer"), what))
    for key in ("kernel_initializer", "bias_initializer"):
        init = read_initializer(c.get(key), what)
        if init is not None:
            out[key] = init
    return out


def _initializer_keras(init):
    from nncore import initializers
    spec = initializers.serialize(init)
    return keras_object("keras.initializers", spec["class_name"], spec["config"])


def _regularizer_keras(reg):
    if reg is None:
        return None
    from nncore import regularizers
    spec = regularizers.serialize(reg)
    return keras_object("keras.regularizers", spec["class_name"], spec["config"])


def _dense_out(layer):
    return dict(common_keras(layer), units=layer.units, activation=layer.activation,
                use_bias=layer.use_bias,
                kernel_initializer=_initializer_keras(layer.kernel_initializer),
                bias_initializer=_initializer_keras(layer.bias_initializer),
                kernel_regularizer=_regularizer_keras(layer.kernel_regularizer),
                bias_regularizer=_regularizer_keras(layer.bias_regularizer),
                kernel_constraint=None, bias_constraint=None, quantization_config=None)


def _dropout_in(c, what):
    require_absent(c, ("noise_shape",), what)
    rate = c.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise FormatError(f"{what}: rate must be a number in [0, 1), got {rate!r}")
    seed = c.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2 ** 63):
        raise FormatError(f"{what}: invalid seed {seed!r}")
    return dict(common(c, what), rate=float(rate), seed=seed)


def _dropout_out(layer):
    return dict(common_keras(layer), rate=layer.rate, seed=layer.seed, noise_shape=None)


def _flatten_in(c, what):
    if c.get("data_format") not in (None, "channels_last"):
        raise FormatError(f"{what}: data_format={c['data_format']!r} is not supported "
                          "by nncore (channels_last)")
    return common(c, what)


def _flatten_out(layer):
    return dict(common_keras(layer), data_format="channels_last")


def _activation_in(c, what):
    return dict(common(c, what), activation=read_activation(c.get("activation"), what))


def _activation_out(layer):
    return dict(common_keras(layer), activation=layer.activation)


CONVERTERS = {
    "Dense": LayerKind("Dense", nn_layers.Dense, _dense_in, _dense_out),
    "Dropout": LayerKind("Dropout", nn_layers.Dropout, _dropout_in, _dropout_out,
                         has_build=False),
    "Flatten": LayerKind("Flatten", nn_layers.Flatten, _flatten_in, _flatten_out),
    "Activation": LayerKind("Activation", nn_layers.Activation, _activation_in,
                            _activation_out, has_build=False),
}


# --------------------------------------------------------------- conv / pooling
# Registered only where nncore has the classes (they arrive on another
# branch).  Keras names: filters, kernel_size, strides, padding, ...; weights
# kernel (kh, kw, in, out) and bias (out,), checked against the nncore
# layer's own shapes when loaded.
def _pair(v, what, key):
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v, v]
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and
            all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 2 ** 16 for d in v)):
        raise FormatError(f"{what}: invalid {key} {v!r}")
    return tuple(v)


def _channels_last(c, what):
    if c.get("data_format") not in (None, "channels_last"):
        raise FormatError(f"{what}: data_format={c['data_format']!r} is not supported "
                          "by nncore (channels_last)")


def _padding(c, what):
    p = c.get("padding", "valid")
    if p not in ("valid", "same"):
        raise FormatError(f"{what}: padding {p!r} is not supported (valid or same)")
    return p


def _conv_in(c, what):
    require_absent(c, ("kernel_constraint", "bias_constraint", "activity_regularizer",
                       "lora_rank", "quantization_config"), what)
    _channels_last(c, what)
    if _pair(c.get("dilation_rate", 1), what, "dilation_rate") != (1, 1) or \
            c.get("groups", 1) != 1:
        raise FormatError(f"{what}: dilated or grouped convolutions are not supported")
    filters = c.get("filters")
    if isinstance(filters, bool) or not isinstance(filters, int) or not 0 < filters <= 2 ** 20:
        raise FormatError(f"{what}: invalid filters {filters!r}")
    out = dict(common(c, what), filters=filters,
               kernel_size=_pair(c.get("kernel_size"), what, "kernel_size"),
               strides=_pair(c.get("strides", 1), what, "strides"), padding=_padding(c, what),
               activation=read_activation(c.get("activation"), what),
               use_bias=bool(c.get("use_bias", True)),
               kernel_regularizer=read_regularizer(c.get("kernel_regularizer"), what),
               bias_regularizer=read_regularizer(c.get("bias_regularizer"), what))
    for k in ("kernel_regularizer", "bias_regularizer"):
        if out[k] is None:
            del out[k]      # an nncore Conv2D without regularizer support stays usable
    return out


def _conv_out(layer):
    out = dict(common_keras(layer), filters=layer.filters,
               kernel_size=list(_pair(layer.kernel_size, "", "")),
               strides=list(_pair(layer.strides, "", "")), padding=layer.padding,
               data_format="channels_last", dilation_rate=[1, 1], groups=1,
               activation=layer.activation, use_bias=layer.use_bias,
               kernel_regularizer=_regularizer_keras(getattr(layer, "kernel_regularizer", None)),
               bias_regularizer=_regularizer_keras(getattr(layer, "bias_regularizer", None)),
               activity_regularizer=None, kernel_constraint=None, bias_constraint=None)
    for key in ("kernel_initializer", "bias_initializer"):
        if getattr(layer, key, None) is not None:
            out[key] = _initializer_keras(getattr(layer, key))
    return out


def _pool_in(c, what):
    _channels_last(c, what)
    pool = _pair(c.get("pool_size", 2), what, "pool_size")
    strides = c.get("strides")
    return dict(common(c, what), pool_size=pool,
                strides=pool if strides is None else _pair(strides, what, "strides"),
                padding=_padding(c, what))


def _pool_out(layer):
    return dict(common_keras(layer), pool_size=list(_pair(layer.pool_size, "", "")),
                strides=list(_pair(layer.strides or layer.pool_size, "", "")),
                padding=layer.padding, data_format="channels_last")


for _name, _in, _out in (("Conv2D", _conv_in, _conv_out),
                         ("MaxPooling2D", _pool_in, _pool_out),
                         ("AveragePooling2D", _pool_in, _pool_out)):
    if hasattr(nn_layers, _name):
        CONVERTERS[_name] = LayerKind(_name, getattr(nn_layers, _name), _in, _out)


# Recurrent layers describe their own Keras configs (the layer-kind contract).
for _cls in (nn_layers.SimpleRNN, nn_layers.LSTM, nn_layers.GRU):
    CONVERTERS[_cls.keras_name] = LayerKind(_cls.keras_name, _cls, _cls.from_keras,
                                            _cls.to_keras)


def kind_of_layer(layer):
    """The LayerKind that writes ``layer`` (its exact class), or None."""
    for kind in CONVERTERS.values():
        if type(layer) is kind.nn_class:
            return kind
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
