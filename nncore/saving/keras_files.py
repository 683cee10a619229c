"""Keras's own files: ``.keras`` (Keras 3), ``.weights.h5`` and legacy ``.h5``.

    model.save("model.keras")              # a zip TensorFlow's load_model reads
    model.save_weights("model.weights.h5")
    model = nncore.models.load_model("trained-in-colab.keras")   # or a Keras 2 .h5
    model.load_weights("model.weights.h5")  # also .h5 (Keras 2) and .keras files

The suffix chooses the format (``nncore.saving.model_io`` dispatches here);
``.npz`` stays nncore's own, default format.  h5py is needed (``pip install
h5py``); TensorFlow never is.

What the files hold (as Keras 3.x / TensorFlow 2.21 write them):

``.keras``  a zip of ``metadata.json`` ({"keras_version", "date_saved"}),
    ``config.json`` (the model: {"module", "class_name": "Sequential",
    "config": {"layers": [...], ...}, "compile_config": {...}}) and
    ``model.weights.h5``.  In the HDF5 file a Sequential's layers are
    addressed by *class*, not name: ``layers/dense/vars/0`` (kernel),
    ``layers/dense/vars/1`` (bias), ``layers/dense_1/vars/0`` ...; the
    optimizer's variables are ``optimizer/vars/0`` (iterations, int64),
    ``/1`` (learning rate, float32), then the slots, kind by kind, each over
    the trainable variables in model order (Adam interleaves m and v per
    variable, then the AMSGrad v-hats).  nncore adds one member Keras ignores,
    ``nncore.json``, with the Dropout layers' random streams, so that a
    resumed fit equals an uninterrupted one bit for bit.
``.weights.h5``  the same HDF5 layout alone.
legacy ``.h5``  (Keras 2 / tf.keras, and Keras 3's ``save('x.h5')``) root
    attributes ``model_config`` and ``training_config`` (JSON), and
    ``model_weights/<layer name>/...`` datasets listed by each layer group's
    ``weight_names`` attribute; a weights-only legacy file has the layer
    groups at the root and a ``layer_names`` attribute.  Optimizer state in
    legacy files is not read (the optimizer starts fresh).

Safety (as Keras's ``safe_mode=True``, and more): nothing a file names is
ever imported or run.  Lambda layers, objects from modules outside Keras,
a ``registered_name`` that differs from the class, serialized functions or
bytes are refused with an error naming the layer.  Unsupported layer kinds
are listed together in one error before anything is built.  Archive members
are checked (``nncore.saving.safe_zip``); every HDF5 object must be a hard
link inside the file (no external/soft links, external or virtual storage);
each dataset's dtype and shape are checked against the model before it is
read, and declared sizes against the bytes actually stored.  Writes are
atomic (``nncore.saving.atomic``).
"""
import datetime
import io
import math
import os
import types
import warnings
import zipfile

import numpy as np

from nncore.saving import keras_layers as KL
from nncore.saving import safe_zip
from nncore.saving import serialization as S
from nncore.saving.atomic import atomic_write
from nncore.saving.format import FormatError, dumps, parse_json

INSTALL_HINT = "pip install h5py  (or, from nncore's source folder: pip install '.[keras]')"
#: the Keras version whose file layout we write (and TensorFlow 2.21 ships)
KERAS_VERSION = "3.15.1"
MAX_CONFIG_BYTES = 64 * 2 ** 20
MAX_ARCHIVE_BYTES = 2 ** 34
MAX_H5_OBJECTS = 100_000
#: a chunked, compressed dataset can hold at most this many bytes per stored byte
H5_MAX_RATIO = 1032
FLOAT_KINDS = {np.dtype("float16"), np.dtype("float32"), np.dtype("float64")}

_ALLOWED_MODULE_PREFIXES = ("keras", "tf_keras")
_FORBIDDEN_CLASSES = ("__lambda__", "__bytes__", "__tensor__", "__numpy__", "__typespec__",
                      "__passive_serialization__", "function")


# --------------------------------------------------------------- helpers
def need_h5py(path, reading=False):
    """The h5py module (a required dependency since the book's own code saves
    .keras files; an install without it still gets one clear error).  A file
    to be read that is not there is reported as missing first: that is the
    real problem, whatever is installed."""
    if reading and isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        raise FileNotFoundError(f"{path!r}: no such file")
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{path!r}: Keras .keras/.h5 files need the h5py package, which "
                          f"is not installed: {INSTALL_HINT}") from None
    return h5py


def _stack(model):
    """The layers that compute, in order: ``model.layers`` without a
    functional model's ``InputLayer`` (Keras 3 lists it there; nncore writes
    and reads a functional model as the Sequential it runs as)."""
    return list(model._layers)


def kind_of_path(path):
    """'keras', 'weights_h5', 'h5' or None (nncore's own .npz or unknown)."""
    low = path.lower()
    if low.endswith(".keras"):
        return "keras"
    if low.endswith(".weights.h5"):
        return "weights_h5"
    if low.endswith((".h5", ".hdf5")):
        return "h5"
    return None


def _text(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("an HDF5 text attribute is not valid UTF-8") from None
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return value


def _text_list(value, what):
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "OSU" and value.size:
            raise FormatError(f"{what} must be a list of names")
        value = value.tolist()
    if isinstance(value, (str, bytes)):
        raise FormatError(f"{what} must be a list of names")
    out = [_text(v) for v in value]
    if not all(isinstance(v, str) and 0 < len(v) < 1000 for v in out):
        raise FormatError(f"{what} must be a list of names")
    return out


# --------------------------------------------------------------- safe-mode scan
def _check_origin(entry, what):
    """A Keras object entry may come from Keras only, under its own name."""
    module = entry.get("module")
    if module is not None and (not isinstance(module, str) or
                               module.split(".")[0] not in _ALLOWED_MODULE_PREFIXES):
        raise FormatError(f"{what}: refusing an object from module {module!r} (nncore "
                          "never imports code named by a file; only Keras's own "
                          "classes load)")
    reg = entry.get("registered_name")
    cname = entry.get("class_name")
    if reg is not None and reg != cname:
        raise FormatError(f"{what}: refusing registered_name {reg!r} for class {cname!r} "
                          "(a custom or re-registered object; nncore loads Keras's "
                          "built-in classes only)")


def scan_hostile(obj, what, depth=0):
    """Refuse anything in a config that stands for code or pickled data."""
    if depth > 64:
        raise FormatError(f"{what}: configuration nested too deeply")
    if isinstance(obj, dict):
        cname = obj.get("class_name")
        if cname in _FORBIDDEN_CLASSES and not (cname == "function" and
                                                isinstance(obj.get("config"), str)):
            raise FormatError(f"{what}: holds a serialized {cname!r} object (code or raw "
                              "bytes), which nncore never loads")
        if "function_type" in obj or "__lambda__" in obj or "py/object" in obj:
            raise FormatError(f"{what}: holds serialized Python code, which nncore never "
                              "runs")
        if "class_name" in obj:
            _check_origin(obj, what)
        for v in obj.values():
            scan_hostile(v, what, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            scan_hostile(v, what, depth + 1)


# --------------------------------------------------------------- config -> model
def _layer_label(entry, i):
    cfg = entry.get("config") if isinstance(entry, dict) else None
    name = cfg.get("name") if isinstance(cfg, dict) else None
    cname = entry.get("class_name") if isinstance(entry, dict) else None
    return f"layer {i} ({cname} {name!r})" if name else f"layer {i} ({cname})"


def _batch_shape(cfg, what):
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if shape is None and cfg.get("input_shape") is not None:
        shape = [None] + list(cfg["input_shape"])
    if shape is None:
        return None
    if not isinstance(shape, list) or not shape:
        raise FormatError(f"{what}: invalid input shape {shape!r}")
    return S._check_shape(shape[1:], f"{what} input shape", allow_none=False)


def model_from_keras_config(entry, source, max_params):
    """An nncore Sequential (built, freshly initialised) from a Keras model
    config; returns (model, [Keras class name per nncore layer])."""
    S._check_object(entry, f"{source}: model config")
    _check_origin(entry, f"{source}: model")
    cname = entry.get("class_name")
    if cname != "Sequential":
        raise FormatError(f"{source}: the file holds a {cname!r} model; nncore loads "
                          "Sequential models only")
    config = S._check_object(entry.get("config"), f"{source}: model config")
    layers = config.get("layers")
    if not isinstance(layers, list) or len(layers) > S.MAX_LAYERS:
        raise FormatError(f"{source}: the model config has no list of layers")
    input_shape = None
    build_shape = config.get("build_input_shape")
    if isinstance(build_shape, list) and build_shape:
        input_shape = S._check_shape(build_shape[1:], f"{source}: build_input_shape",
                                     allow_none=False)
    # pass 1: refuse hostile entries, collect unsupported kinds (all of them)
    unsupported = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str) \
                or not isinstance(layer.get("config", {}), dict):
            raise FormatError(f"{source}: layer {i} is malformed")
        label = _layer_label(layer, i)
        _check_origin(layer, f"{source}: {label}")
        if layer["class_name"] == "Lambda":
            raise FormatError(f"{source}: {label} is a Lambda layer: it holds Python code, "
                              "which nncore never runs from a file (safe mode). Rebuild "
                              "the model in Python and load only its weights.")
        scan_hostile(layer.get("config"), f"{source}: {label}")
        if layer["class_name"] != "InputLayer" and layer["class_name"] not in KL.CONVERTERS:
            unsupported.append(label)
    scan_hostile({k: v for k, v in config.items() if k != "layers"},
                 f"{source}: model config")
    if unsupported:
        raise FormatError(
            f"{source}: nncore cannot load {len(unsupported)} layer(s) of unsupported "
            f"kind: {'; '.join(unsupported)}. Supported: InputLayer, "
            f"{', '.join(sorted(KL.CONVERTERS))}.")
    # pass 2: convert
    nn_entries, keras_classes = [], []
    for i, layer in enumerate(layers):
        cfg = layer.get("config") or {}
        label = f"{source}: {_layer_label(layer, i)}"
        if layer["class_name"] == "InputLayer":
            shape = _batch_shape(cfg, label)
            if shape is not None:
                input_shape = shape
            continue
        if not nn_entries and input_shape is None:
            input_shape = _batch_shape(cfg, label)      # Keras 2: on the first layer
        kind = KL.CONVERTERS[layer["class_name"]]
        nn_entries.append({"class_name": kind.nn_class.__name__,
                           "config": kind.to_nncore(cfg, label)})
        keras_classes.append(layer["class_name"])
    name = config.get("name")
    model_cfg = {"name": name if isinstance(name, str) and name else None,
                 "trainable": config.get("trainable", True),
                 "input_shape": None if input_shape is None else list(input_shape),
                 "layers": nn_entries}
    # the converters' own classes, ahead of anything registered under the
    # same name: a Keras 'Dense' is always nncore's Dense
    classes = {k.nn_class.__name__: k.nn_class for k in KL.CONVERTERS.values()}
    with S.isolated_rng():
        model = S.sequential_from_config(model_cfg, custom_objects=classes,
                                         max_params=max_params)
    if not model.built and nn_entries:
        raise FormatError(f"{source}: the model's input shape is not recorded; nncore "
                          "needs it to load the weights")
    return model, keras_classes


# --------------------------------------------------------------- compile config
_OPT_DROP = {"jit_compile", "is_legacy_optimizer"}


def _optimizer_spec(entry, source):
    from nncore import optimizers
    if isinstance(entry, str):
        opt = optimizers.get(entry)
        return {"class_name": type(opt).__name__, "config": opt.get_config()}
    S._check_object(entry, f"{source}: optimizer")
    cname = entry.get("class_name")
    if isinstance(cname, str) and cname.startswith("Custom>"):
        cname = cname[len("Custom>"):]      # tf.keras's spelling of its new optimizers
    cls = optimizers._BY_CLASS.get(cname)
    if cls is None:
        raise FormatError(f"{source}: optimizer {cname!r} is not supported by nncore "
                          f"({', '.join(sorted(optimizers._BY_CLASS))}); load with "
                          "compile=False and compile the model yourself")
    cfg = dict(entry.get("config") or {})
    known = set(cls().get_config()) | {"use_ema", "ema_momentum", "ema_overwrite_frequency",
                                       "loss_scale_factor", "gradient_accumulation_steps"}
    out = {}
    for k, v in cfg.items():
        if k in _OPT_DROP:
            continue
        if k == "learning_rate" and isinstance(v, dict):
            raise FormatError(f"{source}: optimizer {cname}: learning-rate schedules are not "
                              "supported by nncore; load with compile=False")
        if k == "decay" and v in (0, 0.0, None):
            continue
        if k not in known:
            raise FormatError(f"{source}: optimizer {cname}: option {k!r} is not supported "
                              "by nncore")
        out[k] = v
    return {"class_name": cls.__name__, "config": out}


def _loss_spec(entry, source):
    from nncore import losses
    from nncore.losses import loss as loss_module
    if entry is None:
        return None
    if isinstance(entry, dict) and entry.get("class_name") == "function":
        entry = entry.get("config")
    if isinstance(entry, str):
        if entry not in loss_module.ALL:
            raise FormatError(f"{source}: loss {entry!r} is not supported by nncore "
                              f"({', '.join(loss_module.ALL)})")
        obj = losses.get(entry)
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    if not isinstance(entry, dict):
        raise FormatError(f"{source}: nncore loads a single loss (got {type(entry).__name__})")
    cls = loss_module._BY_CLASS.get(entry.get("class_name"))
    if cls is None:
        raise FormatError(f"{source}: loss {entry.get('class_name')!r} is not supported by "
                          "nncore; load with compile=False")
    cfg = S._check_object(entry.get("config") or {}, f"{source}: loss config")
    known = set(cls().get_config())
    out = {}
    for k, v in cfg.items():
        if k == "dtype" or (k == "ignore_class" and v is None):
            continue
        if k not in known:
            raise FormatError(f"{source}: loss {cls.__name__}: option {k!r} is not "
                              "supported by nncore")
        out[k] = v
    return {"class_name": cls.__name__, "config": out}


def _metric_specs(value, source):
    from nncore import metrics
    if value is None:
        return []
    if isinstance(value, dict):
        raise FormatError(f"{source}: per-output metrics are not supported by nncore")
    flat = []

    def walk(v):
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            flat.append(v)
    walk(value)
    out = []
    for m in flat:
        if isinstance(m, dict) and m.get("class_name") == "function":
            m = m.get("config")
        if isinstance(m, dict) and m.get("class_name") == "MeanMetricWrapper":
            cfg = m.get("config") or {}
            name = cfg.get("name")      # the name the logs show ('accuracy')
            m = name if name in ("accuracy", "acc") or name in metrics.ALL else cfg.get("fn")
        if isinstance(m, str):
            if m not in ("accuracy", "acc") and m not in metrics.ALL:
                raise FormatError(f"{source}: metric {m!r} is not supported by nncore; "
                                  "load with compile=False")
            out.append(m)
        elif isinstance(m, dict) and m.get("class_name") in metrics._BY_CLASS:
            cls = metrics._BY_CLASS[m["class_name"]]
            cfg = m.get("config") or {}
            keep = set(cls().get_config())
            out.append({"class_name": cls.__name__,
                        "config": {k: v for k, v in cfg.items() if k in keep}})
        else:
            raise FormatError(f"{source}: metric {m!r} is not supported by nncore; load "
                              "with compile=False")
    return out


def compile_from_keras(model, cc, source):
    S._check_object(cc, f"{source}: compile config")
    if cc.get("loss_weights") not in (None, [], {}):
        raise FormatError(f"{source}: loss_weights are not supported by nncore")
    spec = {"optimizer": _optimizer_spec(cc.get("optimizer_config", cc.get("optimizer")),
                                         source),
            "loss": _loss_spec(cc.get("loss"), source),
            "metrics": _metric_specs(cc.get("metrics"), source),
            "weighted_metrics": _metric_specs(cc.get("weighted_metrics"), source)}
    S.compile_from_config(model, spec)


# --------------------------------------------------------------- HDF5, read safely
class H5Reader:
    """Checked access to an open h5py File: hard links only, no external or
    virtual storage, dtype and shape checked before a dataset is read."""

    def __init__(self, h5py, f, source):
        self.h5py, self.f, self.source = h5py, f, source

    def child(self, group, name, kind, what):
        """group[name] if it is a hard-linked ``kind`` ('group'/'dataset'), else None."""
        if not isinstance(name, str) or not name or name.startswith("/") or "\x00" in name:
            raise FormatError(f"{self.source}: {what}: invalid HDF5 name {name!r}")
        try:
            link = group.get(name, getlink=True)
        except (KeyError, ValueError, OSError):
            return None
        if link is None:
            return None
        if not isinstance(link, self.h5py.HardLink):
            raise FormatError(f"{self.source}: {what}: {name!r} is a soft or external "
                              "HDF5 link; nncore reads objects stored in the file only")
        obj = group[name]
        want = self.h5py.Group if kind == "group" else self.h5py.Dataset
        if not isinstance(obj, want):
            raise FormatError(f"{self.source}: {what}: {name!r} is not an HDF5 {kind}")
        return obj

    def path(self, group, path, kind, what):
        parts = [p for p in path.split("/") if p]
        if not parts or path.startswith("/") or any(p in (".", "..") for p in parts):
            raise FormatError(f"{self.source}: {what}: invalid HDF5 path {path!r}")
        for p in parts[:-1]:
            group = self.child(group, p, "group", what)
            if group is None:
                return None
        return self.child(group, parts[-1], kind, what)

    def check_dataset(self, ds, what):
        if ds.is_virtual or ds.external:
            raise FormatError(f"{self.source}: {what} uses external or virtual storage; "
                              "refused")
        dtype = ds.dtype
        if dtype.fields is not None or dtype.kind not in "fiu" or dtype.hasobject:
            raise FormatError(f"{self.source}: {what} has dtype {dtype}; expected numbers")
        nbytes = math.prod(ds.shape or ()) * dtype.itemsize
        stored = ds.id.get_storage_size()
        # compressed chunks cannot beat deflate's ratio; an unallocated dataset
        # (fill value only) of huge shape is a way to claim memory for free
        if nbytes > stored * H5_MAX_RATIO + 1024:
            raise FormatError(f"{self.source}: {what} declares shape {ds.shape} "
                              f"({nbytes} bytes) but stores only {stored} bytes: refused")
        return nbytes

    def read(self, ds, shape, dtypes, what):
        """The dataset as an array, after checking shape and dtype."""
        self.check_dataset(ds, what)
        if tuple(ds.shape) != tuple(shape):
            raise FormatError(f"{self.source}: {what} has shape {tuple(ds.shape)} in the "
                              f"file; the model needs {tuple(shape)}")
        if ds.dtype not in dtypes:
            raise FormatError(f"{self.source}: {what} has dtype {ds.dtype}; expected "
                              f"{' or '.join(sorted(str(d) for d in dtypes))}")
        arr = np.empty(tuple(shape), dtype=ds.dtype)
        try:
            if arr.size:
                ds.read_direct(arr)
        except (OSError, ValueError, TypeError, RuntimeError) as e:
            raise FormatError(f"{self.source}: {what} could not be read (damaged file): "
                              f"{e}") from None
        return arr

    def float_budget(self):
        """Number of values in the file's float datasets (bounds the architecture)."""
        total, count = 0, [0]

        def visit(name, obj):
            count[0] += 1
            if count[0] > MAX_H5_OBJECTS:
                raise FormatError(f"{self.source}: too many HDF5 objects")
            if isinstance(obj, self.h5py.Dataset) and obj.dtype in FLOAT_KINDS:
                self.check_dataset(obj, f"dataset {name!r}")
                nonlocal total
                total += math.prod(obj.shape or ())
        self.f.visititems(visit)
        return total


def _open_h5(h5py, source, data=None, path=None):
    try:
        return h5py.File(io.BytesIO(data) if data is not None else path, "r")
    except (OSError, ValueError) as e:
        raise FormatError(f"{source}: not a readable HDF5 file (damaged, truncated or not "
                          f"HDF5): {e}") from None


def _check_finite(source, pairs):
    for var, arr in pairs:
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise FormatError(f"{source}: weight {var.path} contains NaN or inf; refusing "
                              "to load it")


def _assign(pairs):
    for var, arr in pairs:
        var.value[...] = arr.astype(var.dtype, copy=False)


def _keras3_weight_pairs(r, layers, paths, what="layer"):
    """[(variable, array)] from the Keras 3 layout (layers/<path>/vars/<i>)."""
    pairs = []
    for layer, path in zip(layers, paths):
        if not layer.weights:
            continue
        # (recurrent layers keep theirs on the cell: <path>/cell/vars)
        vars_path = f"{path}/{getattr(layer, 'keras_vars', 'vars')}"
        vars_group = r.path(r.f, vars_path, "group", f"{what} {layer.name!r}")
        if vars_group is None:
            raise FormatError(f"{r.source}: no weights for layer {layer.name!r} (expected "
                              f"HDF5 group {vars_path})")
        names = sorted(vars_group.keys())
        if names != [str(i) for i in range(len(layer.weights))]:
            raise FormatError(f"{r.source}: layer {layer.name!r} has {len(names)} weight "
                              f"array(s) in the file ({names[:8]}), the model needs "
                              f"{len(layer.weights)}")
        for i, var in enumerate(layer.weights):
            ds = r.child(vars_group, str(i), "dataset", f"{vars_path}/{i}")
            pairs.append((var, r.read(ds, var.shape, FLOAT_KINDS,
                                      f"weight {i} of layer {layer.name!r} ({vars_path}/{i})")))
    return pairs


def _legacy_weight_pairs(r, group, layers, by_name):
    """[(variable, array)] from a Keras 2 style group: one subgroup per layer,
    listing its datasets in a ``weight_names`` attribute."""
    names = _text_list(group.attrs.get("layer_names"), f"{r.source}: layer_names")
    file_layers = []
    for lname in names:
        g = r.child(group, lname, "group", f"layer {lname!r}")
        if g is None:
            raise FormatError(f"{r.source}: layer {lname!r} is listed but missing")
        wnames = _text_list(g.attrs.get("weight_names"), f"{r.source}: layer {lname!r} "
                            "weight_names")
        if wnames:
            file_layers.append((lname, g, wnames))
    targets = [l for l in layers if l.weights]
    if by_name:
        found = {n: (g, w) for n, g, w in file_layers}
        missing = [l.name for l in targets if l.name not in found]
        if missing:
            raise FormatError(f"{r.source}: no weights for layer(s) {missing} in the file")
        matched = [(l, found[l.name]) for l in targets]
    else:
        if len(file_layers) != len(targets):
            raise ValueError(f"load_weights: {r.source} holds weights for {len(file_layers)} "
                             f"layer(s) {[n for n, _, _ in file_layers]}, the model has "
                             f"{len(targets)} layer(s) with weights {[l.name for l in targets]}")
        matched = [(l, (g, w)) for l, (_, g, w) in zip(targets, file_layers)]
    pairs = []
    for layer, (g, wnames) in matched:
        if len(wnames) != len(layer.weights):
            raise FormatError(f"{r.source}: layer {layer.name!r} has {len(wnames)} weight "
                              f"array(s) in the file, the model needs {len(layer.weights)}")
        for var, wname in zip(layer.weights, wnames):
            ds = r.path(g, wname, "dataset", f"layer {layer.name!r}")
            if ds is None:
                raise FormatError(f"{r.source}: weight {wname!r} of layer {layer.name!r} "
                                  "is missing")
            pairs.append((var, r.read(ds, var.shape, FLOAT_KINDS,
                                      f"weight {wname!r} of layer {layer.name!r}")))
    return pairs


# --------------------------------------------------------------- optimizer state
def _slot_groups(opt):
    """Keras 3's optimizer variable layout after iterations and learning rate:
    a list of groups, each a list of nncore slot names interleaved per
    variable (Keras's add_optimizer_variables with several names interleaves)."""
    name = type(opt).__name__
    have = set(opt.slot_names())
    groups = {"SGD": [["momentum"]], "Adagrad": [["accumulator"]],
              "Adam": [["m", "v"], ["vhat"]],
              "RMSprop": [["velocity"], ["momentum"], ["average_gradient"]]}.get(name)
    if groups is None:
        return None
    out = [[s for s in g if s in have] for g in groups]
    return [g for g in out if g]


def _restore_keras_optimizer(model, r, source):
    opt = model.optimizer
    group = r.path(r.f, "optimizer/vars", "group", "optimizer")
    if group is None:
        return
    groups = _slot_groups(opt)
    trainable = model._trainable_pairs()[0]
    names = sorted(group.keys(), key=lambda s: (len(s), s))
    expected = 2 + sum(len(g) for g in groups) * len(trainable) if groups is not None else -1
    if names != [str(i) for i in range(len(names))] or len(names) != expected:
        warnings.warn(f"{source}: the saved optimizer state has {len(names)} variables, "
                      f"nncore's {type(opt).__name__} for this model needs {expected}; the "
                      "optimizer starts fresh", stacklevel=4)
        return
    it = r.read(r.child(group, "0", "dataset", "optimizer/vars/0"), (),
                {np.dtype("int64"), np.dtype("int32")}, "optimizer iterations")
    it = int(it)
    if not 0 <= it < 2 ** 62:
        raise FormatError(f"{source}: optimizer iterations {it} is invalid")
    lr = float(r.read(r.child(group, "1", "dataset", "optimizer/vars/1"), (), FLOAT_KINDS,
                      "optimizer learning rate"))
    if not (math.isfinite(lr) and lr >= 0):
        raise FormatError(f"{source}: optimizer learning rate {lr} is invalid")
    values = [{} for _ in trainable]
    k = 2
    for g in groups:
        for i, var in enumerate(trainable):
            for slot in g:
                ds = r.child(group, str(k), "dataset", f"optimizer/vars/{k}")
                values[i][slot] = r.read(ds, var.shape, {var.dtype},
                                         f"optimizer slot {slot!r} of {var.path}")
                k += 1
    for vals in values:
        for arr in vals.values():
            if not np.all(np.isfinite(arr)):
                raise FormatError(f"{source}: optimizer state contains NaN or inf")
    opt.build(trainable)
    for i, vals in enumerate(values):
        for slot, arr in vals.items():
            opt.slots[i][slot][...] = arr
    opt.iterations = it
    # the config holds the float64 value, the variable its float32 copy: keep
    # the exact one unless the variable says the rate was changed since
    if np.float32(opt.learning_rate) != np.float32(lr):
        opt.learning_rate = lr


# --------------------------------------------------------------- loading
def _read_keras_archive(path):
    """(config dict, weights bytes, nncore extras or None) from a .keras zip."""
    try:
        zf = zipfile.ZipFile(path, "r")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        if isinstance(e, (IsADirectoryError, PermissionError)):
            raise
        raise FormatError(f"{path!r} is not a valid .keras file (damaged, truncated or "
                          f"not a zip archive): {e}") from None
    with zf:
        try:
            members = safe_zip.check_members(zf, path, MAX_ARCHIVE_BYTES)
            for required in ("config.json", "model.weights.h5"):
                if required not in members:
                    other = " (model.weights.npz weights are not supported)" \
                        if "model.weights.npz" in members else ""
                    raise FormatError(f"{path!r}: not a Keras 3 .keras file: no "
                                      f"{required} member{other}")
            config = parse_json(safe_zip.read_member(zf, members["config.json"], path,
                                                     MAX_CONFIG_BYTES), f"{path!r} config.json")
            if "metadata.json" in members:
                meta = parse_json(safe_zip.read_member(zf, members["metadata.json"], path,
                                                       2 ** 20), f"{path!r} metadata.json")
                if not isinstance(meta, dict):
                    raise FormatError(f"{path!r}: metadata.json is not a JSON object")
            extras = None
            if "nncore.json" in members:
                extras = parse_json(safe_zip.read_member(zf, members["nncore.json"], path,
                                                         MAX_CONFIG_BYTES),
                                    f"{path!r} nncore.json")
            weights = safe_zip.read_member(zf, members["model.weights.h5"], path,
                                           MAX_ARCHIVE_BYTES)
        except safe_zip.ArchiveError as e:
            raise FormatError(str(e)) from None
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
            raise FormatError(f"{path!r}: damaged .keras archive: {e}") from None
    if not isinstance(config, dict):
        raise FormatError(f"{path!r}: config.json is not a JSON object")
    return config, weights, extras


def _restore_extras(model, extras, source):
    if extras is None:
        return
    from nncore.saving import model_io
    if not isinstance(extras, dict):
        raise FormatError(f"{source}: nncore.json is not a JSON object")
    reader = types.SimpleNamespace(path=source)
    model_io._restore_layer_state(model, reader, extras.get("layer_state"))


def load_keras_model(path, compile=True):
    h5py = need_h5py(path, reading=True)
    source = repr(path)
    config, weights, extras = _read_keras_archive(path)
    with _open_h5(h5py, source, data=weights) as f:
        r = H5Reader(h5py, f, source)
        model, classes = model_from_keras_config(config, source, r.float_budget())
        pairs = _keras3_weight_pairs(r, _stack(model), KL.weight_paths(classes))
        _check_finite(source, pairs)
        _assign(pairs)
        _restore_extras(model, extras, source)
        cc = config.get("compile_config")
        if compile and cc:
            compile_from_keras(model, cc, source)
            _restore_keras_optimizer(model, r, source)
    return model


def load_legacy_h5_model(path, compile=True):
    h5py = need_h5py(path, reading=True)
    source = repr(path)
    with _open_h5(h5py, source, path=path) as f:
        r = H5Reader(h5py, f, source)
        raw = _text(f.attrs.get("model_config"))
        if raw is None:
            if "layers" in f or "layer_names" in f.attrs:
                raise ValueError(f"load_model: {source} holds only weights (written by "
                                 "save_weights); build the model and call "
                                 "model.load_weights() instead")
            raise FormatError(f"{source}: not a Keras model file (no model_config)")
        if not isinstance(raw, str) or len(raw) > MAX_CONFIG_BYTES:
            raise FormatError(f"{source}: model_config is not JSON text")
        config = parse_json(raw, f"{source} model_config")
        weights = r.child(f, "model_weights", "group", "model_weights")
        if weights is None:
            raise FormatError(f"{source}: no model_weights group")
        model, _ = model_from_keras_config(config, source, r.float_budget())
        pairs = _legacy_weight_pairs(r, weights, _stack(model), by_name=True)
        _check_finite(source, pairs)
        _assign(pairs)
        raw_tc = _text(f.attrs.get("training_config"))
        if compile and raw_tc is not None:
            if not isinstance(raw_tc, str) or len(raw_tc) > MAX_CONFIG_BYTES:
                raise FormatError(f"{source}: training_config is not JSON text")
            tc = parse_json(raw_tc, f"{source} training_config")
            scan_hostile(tc, f"{source}: training_config")
            compile_from_keras(model, tc, source)
    return model


def load_weights_into(model, path):
    """load_weights for .weights.h5 / .h5 / .keras files."""
    h5py = need_h5py(path, reading=True)
    source = repr(path)
    kind = kind_of_path(path)
    layers = _stack(model)
    missing = [l.name for l in layers if l.weights and KL.kind_of_layer(l) is None]
    if kind == "keras":
        _, data, _ = _read_keras_archive(path)
        f = _open_h5(h5py, source, data=data)
    else:
        f = _open_h5(h5py, source, path=path)
    with f:
        r = H5Reader(h5py, f, source)
        if r.child(f, "layers", "group", "layers") is not None:
            if missing:
                raise ValueError(f"load_weights: layer(s) {missing} have no Keras "
                                 "equivalent, so their place in a Keras weights file "
                                 "is unknown")
            classes = [KL.kind_of_layer(l).keras_name if KL.kind_of_layer(l)
                       else type(l).__name__ for l in layers]
            pairs = _keras3_weight_pairs(r, layers, KL.weight_paths(classes))
        elif "layer_names" in f.attrs:
            pairs = _legacy_weight_pairs(r, f, layers, by_name=False)
        else:
            g = r.child(f, "model_weights", "group", "model_weights")
            if g is None:
                raise FormatError(f"{source}: no Keras weights found (neither a Keras 3 "
                                  "'layers' group nor a Keras 2 weights layout)")
            pairs = _legacy_weight_pairs(r, g, layers, by_name=False)
        _check_finite(source, pairs)
    _assign(pairs)


# --------------------------------------------------------------- writing
def _keras_layer_entries(model):
    """The Keras 3 layer configs of ``model`` (refusing layers Keras lacks)."""
    layers = _stack(model)
    kinds = [KL.kind_of_layer(l) for l in layers]
    missing = [f"{l.name!r} ({type(l).__name__})" for l, k in zip(layers, kinds) if k is None]
    if missing:
        raise ValueError(f"cannot write a Keras file: layer(s) {', '.join(missing)} have no "
                         "Keras equivalent that nncore can write; save as .npz instead")
    if model.input_shape is None:
        raise ValueError("cannot write a Keras file for a model whose input shape is unknown "
                         "(give it a keras.Input or call it on data first)")
    shape = tuple(model.input_shape)
    entries = [{"module": "keras.layers", "class_name": "InputLayer",
                "config": {"batch_shape": list(shape), "dtype": str(model.dtype),
                           "sparse": False, "ragged": False, "name": "input_layer",
                           "optional": False},
                "registered_name": None}]
    for layer, kind in zip(layers, kinds):
        e = {"module": "keras.layers", "class_name": kind.keras_name,
             "config": kind.to_keras(layer), "registered_name": None}
        if kind.has_build:
            e["build_config"] = {"input_shape": list(shape)}
        entries.append(e)
        shape = tuple(layer.compute_output_shape(shape))
    return entries, kinds


def _keras_compile_config(model):
    from nncore import metrics as nn_metrics
    opt = model.optimizer
    ocfg = dict(opt.get_config())
    ocfg.update(use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                loss_scale_factor=None, gradient_accumulation_steps=None)
    if type(opt).__name__ not in ("SGD", "Adam", "RMSprop", "Adagrad"):
        raise ValueError(f"cannot write a Keras file: optimizer {type(opt).__name__} has no "
                         "Keras equivalent nncore can write")

    def metric(spec):
        if isinstance(spec, str):
            return spec
        if isinstance(spec, type):
            spec = spec()
        if not isinstance(spec, nn_metrics.Metric) or \
                type(spec).__name__ not in nn_metrics._BY_CLASS:
            raise ValueError(f"cannot write a Keras file: metric {spec!r} has no Keras "
                             "equivalent")
        return KL.keras_object("keras.metrics", type(spec).__name__, spec.get_config())
    loss = None if model.loss is None else KL.keras_object(
        "keras.losses", type(model.loss).__name__, model.loss.get_config())
    return {"optimizer": KL.keras_object("keras.optimizers", type(opt).__name__, ocfg),
            "loss": loss, "loss_weights": None,
            "metrics": [metric(m) for m in model._metric_specs] or None,
            "weighted_metrics": [metric(m) for m in model._weighted_metric_specs] or None,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _optimizer_arrays(model):
    """[iterations, learning rate, slots in Keras's order] for model.optimizer."""
    opt = model.optimizer
    groups = _slot_groups(opt)
    trainable = model._trainable_pairs()[0]
    if opt.built:
        index = {id(v): i for i, v in enumerate(opt._variables)}
        if len(index) != len(trainable) or any(id(v) not in index for v in trainable):
            raise ValueError("cannot save the optimizer state: the optimizer was built for "
                             "other weights than the model now trains (recompile the model)")
        slots = [opt.slots[index[id(v)]] for v in trainable]
    else:       # what Keras builds on load: zeros (or the initial accumulator)
        slots = [{s: np.full(v.shape, opt._slot_init(s), dtype=v.dtype)
                  for s in opt.slot_names()} for v in trainable]
    out = [np.array(int(np.asarray(opt.iterations).item()), dtype=np.int64),
           np.array(opt.learning_rate, dtype=np.float32)]
    for g in groups:
        for s in slots:
            out.extend(s[name] for name in g)
    return out


def _write_weights_h5(h5py, model, classes, with_optimizer):
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        for layer, path in zip(_stack(model), KL.weight_paths(classes)):
            g = f.create_group(f"{path}/{getattr(layer, 'keras_vars', 'vars')}")
            g.attrs["name"] = layer.name
            for i, var in enumerate(layer.weights):
                g.create_dataset(str(i), data=np.ascontiguousarray(var.value))
        f.create_group("vars").attrs["name"] = model.name
        if with_optimizer:
            g = f.create_group("optimizer/vars")
            g.attrs["name"] = model.optimizer.name
            for i, arr in enumerate(_optimizer_arrays(model)):
                g.create_dataset(str(i), data=np.array(arr, order="C"))
    return bio.getvalue()


def sequential_config(model):
    """``(config, kinds)``: the Keras 3 ``Sequential`` config dict of ``model``
    (without ``compile_config``) and its layers' Keras kinds.  One definition for
    the ``.keras`` archive and TensorBoard's graph tag, so the two cannot drift.
    Raises ``ValueError`` as ``_keras_layer_entries`` does."""
    entries, kinds = _keras_layer_entries(model)
    shape = list(model.input_shape)
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": model.name, "trainable": model.trainable,
                         "dtype": KL.policy(model.dtype), "layers": entries,
                         "build_input_shape": shape},
              "registered_name": None, "build_config": {"input_shape": shape}}
    return config, kinds


def save_keras_model(model, path, overwrite=True):
    """Write ``model`` as a Keras 3 ``.keras`` archive (atomically)."""
    import nncore
    from nncore.saving import model_io
    h5py = need_h5py(path)
    config, kinds = sequential_config(model)
    compiled = model.compiled and model.optimizer is not None
    if compiled:
        config["compile_config"] = _keras_compile_config(model)
    weights = _write_weights_h5(h5py, model, [k.keras_name for k in kinds], compiled)
    meta = {"keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "nncore_version": getattr(nncore, "__version__", "unknown")}
    extras = {"format": "nncore-keras-extras", "version": 1,
              "layer_state": model_io._layer_state(model)}

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("metadata.json", dumps(meta))
            zf.writestr("config.json", dumps(config))
            zf.writestr("model.weights.h5", weights)
            zf.writestr("nncore.json", dumps(extras))
    atomic_write(path, write, overwrite=overwrite, what="save_model")


def save_keras_weights(model, path, overwrite=True):
    """Write the weights in Keras 3's ``.weights.h5`` layout (atomically)."""
    h5py = need_h5py(path)
    _, kinds = _keras_layer_entries(model)
    data = _write_weights_h5(h5py, model, [k.keras_name for k in kinds], False)
    atomic_write(path, lambda f: f.write(data), overwrite=overwrite, what="save_weights")
