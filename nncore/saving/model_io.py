"""save_model / load_model / save_weights / load_weights.

A model file (``model.save('m.npz')``) holds, in one ``.npz``:

    format_version      int64 scalar (nncore.saving.format.FORMAT_VERSION)
    metadata            uint8 UTF-8 JSON:
        format          "nncore"
        format_version  same as the member
        nncore_version  the writer's nncore.__version__
        kind            "model" (or "weights" for save_weights files)
        model           {"class_name": "Sequential", "config": {name, trainable,
                         input_shape, layers: [{class_name, config}, ...]}}
        weights         per layer, in order: {"layer": name, "class_name": ...,
                         "arrays": [{"name", "key", "shape", "dtype"}, ...]}
        layer_state     [{"layer": index, "stream_seed": int, "step": int}]
                        (the Dropout layers' mask streams)
        compile         null, or {"optimizer": {class_name, config},
                         "loss": {class_name, config} | null,
                         "metrics": [name | {class_name, config}, ...]}
        optimizer_state null, or {"built": bool, "iterations": int,
                         "variables": [{"weight": [layer index, weight index],
                                        "slots": {slot name: key}}, ...]}
    w0, w1, ...         the weights named in the manifest
    o0_0, ...           the optimizer slots named in optimizer_state

A weights file (``model.save_weights('x.weights.npz')``) has the same
container with kind "weights" and only the weights manifest and arrays.
"""
import os
import warnings

import numpy as np

from nncore.saving import keras_files
from nncore.saving import serialization as S
from nncore.saving.format import (FLOAT_DTYPES, FORMAT_NAME, FORMAT_VERSION, FormatError,
                                  NpzReader, json_array, write_npz)

MODEL_SUFFIX = ".npz"
WEIGHTS_SUFFIX = ".weights.npz"


# --------------------------------------------------------------- paths
def _path(filepath, what):
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{what}: filepath must be a str or path, got {type(filepath).__name__}")
    return os.fspath(filepath)


def _foreign_suffix_hint(path):
    low = path.lower()
    for suffix in (".keras", ".h5", ".hdf5", ".weights.h5", ".tf", ".pb"):
        if low.endswith(suffix):
            return (f" nncore writes its own .npz format, not Keras's {suffix} files: "
                    f"use e.g. {path[:len(path) - len(suffix)]}")
    return None


def _check_model_path(path):
    if path.lower().endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"save_model: {path!r} ends with {WEIGHTS_SUFFIX}, the suffix of "
                         "weights-only files; use model.save_weights() for those, or a "
                         "name ending in .npz (without .weights) for the whole model")
    if not path.lower().endswith(MODEL_SUFFIX):
        hint = _foreign_suffix_hint(path)
        if hint:
            raise ValueError(f"save_model: invalid filepath {path!r}.{hint}.npz")
        raise ValueError(f"save_model: the filepath must end in .npz, got {path!r}")


def _check_weights_path(path):
    if not path.lower().endswith(WEIGHTS_SUFFIX):
        hint = _foreign_suffix_hint(path)
        base = path[:-4] if path.lower().endswith(".npz") else None
        if hint:
            raise ValueError(f"save_weights: invalid filepath {path!r}.{hint}.weights.npz")
        raise ValueError(f"save_weights: the filepath must end in .weights.npz, got "
                         f"{path!r}" + (f" (e.g. {base}.weights.npz)" if base else ""))


def _check_load_path(path, what):
    hint = _foreign_suffix_hint(path)
    if hint and not path.lower().endswith(".npz"):
        raise ValueError(f"{what}: cannot read {path!r}.{hint}.npz")


def _keras_kind(path, what):
    """Which Keras format a path's suffix asks for (None: nncore's .npz);
    a Keras suffix the operation cannot write is refused here."""
    kind = keras_files.kind_of_path(path)
    if what == "save_model" and kind in ("h5", "weights_h5"):
        base = path[:path.lower().rfind(".weights.h5" if kind == "weights_h5" else ".")]
        raise ValueError(f"save_model: nncore writes Keras models as .keras files (or its "
                         f"own .npz), not as legacy/weights HDF5 ({path!r}): use "
                         f"{base}.keras" + (", or model.save_weights() for weights"
                                            if kind == "weights_h5" else ""))
    if what == "save_weights" and kind in ("h5", "keras"):
        base = path[:path.lower().rfind(".")]
        raise ValueError(f"save_weights: Keras weights files end in .weights.h5 (got "
                         f"{path!r}): use e.g. {base}.weights.h5, or {base}.weights.npz")
    return kind


def _require_sequential(model, what):
    from nncore.models.sequential import Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"{what}: nncore saves Sequential models, got {type(model).__name__}")


def _stack(model):
    """The layers that compute, in order: ``model.layers`` without a
    functional model's ``InputLayer`` (Keras 3 lists it there; nncore stores a
    functional model as the Sequential it runs as, whose layers do not)."""
    return list(model._layers)


# --------------------------------------------------------------- writing
def _weights_section(model, arrays):
    manifest = []
    k = 0
    for layer in _stack(model):
        entries = []
        for var in layer.weights:
            key = f"w{k}"
            k += 1
            arrays[key] = np.ascontiguousarray(var.value)
            entries.append({"name": var.name, "key": key, "shape": list(var.shape),
                            "dtype": str(var.dtype)})
        manifest.append({"layer": layer.name, "class_name": S.class_name_of(layer),
                         "arrays": entries})
    return manifest


def _layer_state(model):
    out = []
    for i, layer in enumerate(_stack(model)):
        if hasattr(layer, "_stream_seed") and hasattr(layer, "step"):
            out.append({"layer": i, "stream_seed": int(layer._stream_seed),
                        "step": int(layer.step)})
    return out


def _optimizer_state(model, arrays):
    opt = model.optimizer
    if opt is None:
        return None
    state = {"built": bool(opt.built), "iterations": int(opt.iterations), "variables": []}
    if not opt.built:
        return state
    where = {}
    for li, layer in enumerate(_stack(model)):
        for wi, var in enumerate(layer.weights):
            where[id(var)] = (li, wi)
            where[id(var.value)] = (li, wi)
    for i, v in enumerate(opt._variables):
        if id(v) not in where:
            raise ValueError("save_model: the optimizer holds state for a variable that "
                             "is not one of this model's weights; compile the model with "
                             "its own optimizer")
        slots = {}
        for j, (name, arr) in enumerate(opt.slots[i].items()):
            key = f"o{i}_{j}"
            arrays[key] = np.ascontiguousarray(arr)
            slots[name] = key
        state["variables"].append({"weight": list(where[id(v)]), "slots": slots})
    return state


def _metadata(kind, **sections):
    import nncore
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "nncore_version": getattr(nncore, "__version__", "unknown"),
            "kind": kind, **sections}


def save_model(model, filepath, overwrite=True, **kwargs):
    """Write the whole model -- architecture, weights, compile config,
    optimizer state, dropout streams -- to one ``.npz`` file, atomically."""
    if kwargs:
        raise TypeError(f"save_model: unexpected argument(s) {', '.join(kwargs)}")
    path = _path(filepath, "save_model")
    if _keras_kind(path, "save_model") == "keras":
        _require_sequential(model, "save_model")
        return keras_files.save_keras_model(model, path, overwrite=overwrite)
    _check_model_path(path)
    _require_sequential(model, "save_model")
    arrays = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64)}
    meta = _metadata("model", model=S.serialize_model(model),
                     weights=_weights_section(model, arrays),
                     layer_state=_layer_state(model),
                     compile=S.serialize_compile(model),
                     optimizer_state=_optimizer_state(model, arrays) if model.compiled else None)
    arrays["metadata"] = json_array(meta)
    write_npz(path, arrays, overwrite=overwrite)


def save_weights(model, filepath, overwrite=True):
    """Write the model's weights (by layer, in order) to ``*.weights.npz``."""
    path = _path(filepath, "save_weights")
    if _keras_kind(path, "save_weights") == "weights_h5":
        _require_sequential(model, "save_weights")
        return keras_files.save_keras_weights(model, path, overwrite=overwrite)
    _check_weights_path(path)
    _require_sequential(model, "save_weights")
    arrays = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64)}
    meta = _metadata("weights", weights=_weights_section(model, arrays))
    arrays["metadata"] = json_array(meta)
    write_npz(path, arrays, overwrite=overwrite)


# --------------------------------------------------------------- reading
def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_manifest(reader, manifest):
    """[(layer name, class name, [(weight name, key, shape, dtype)])], checked
    against the file's members."""
    if not isinstance(manifest, list) or len(manifest) > S.MAX_LAYERS:
        raise FormatError(f"{reader.path!r}: the weights manifest must be a list")
    out, seen = [], set()
    for i, entry in enumerate(manifest):
        if not isinstance(entry, dict) or not isinstance(entry.get("layer"), str) \
                or not isinstance(entry.get("arrays"), list):
            raise FormatError(f"{reader.path!r}: weights manifest entry {i} is malformed")
        arrs = []
        for a in entry["arrays"]:
            if not isinstance(a, dict) or not isinstance(a.get("key"), str) \
                    or not isinstance(a.get("name"), str):
                raise FormatError(f"{reader.path!r}: weights manifest entry {i} "
                                  f"({entry['layer']!r}) is malformed")
            key = a["key"]
            if key in seen or key in ("format_version", "metadata"):
                raise FormatError(f"{reader.path!r}: weight member {key!r} listed twice")
            seen.add(key)
            info = reader.info(key)
            if info.dtype not in FLOAT_DTYPES:
                raise FormatError(f"{reader.path!r}: weight {entry['layer']}/{a['name']} "
                                  f"has dtype {info.dtype}; weights are floats")
            arrs.append((a["name"], key, info.shape, info.dtype))
        out.append((entry["layer"], str(entry.get("class_name", "?")), arrs))
    return out


def _check_finite(path, values):
    """Weights from a file obey the same rule as set_weights: no NaN or inf."""
    for var, value in values:
        if not np.all(np.isfinite(value)):
            raise FormatError(f"{path!r}: weight {var.path} contains NaN or inf; "
                              "refusing to load it")


def _weights_budget(reader):
    return sum(info.size for key, info in reader.members.items()
               if key.startswith("w") and info.dtype in FLOAT_DTYPES)


def _assign_same_architecture(model, reader, manifest):
    """Weights of a model built from the file's own architecture: layer i of
    the file is layer i of the model, shapes and dtypes must be equal."""
    layers = _stack(model)
    if len(manifest) != len(layers):
        raise FormatError(f"{reader.path!r}: the weights manifest lists {len(manifest)} "
                          f"layers, the architecture has {len(layers)}")
    pending = []
    for layer, (lname, _, arrs) in zip(layers, manifest):
        if len(arrs) != len(layer.weights):
            raise FormatError(f"{reader.path!r}: layer {lname!r} has {len(arrs)} weight "
                              f"arrays in the file, the architecture needs {len(layer.weights)}")
        for var, (wname, key, shape, dtype) in zip(layer.weights, arrs):
            if shape != var.shape or dtype != var.dtype:
                raise FormatError(
                    f"{reader.path!r}: layer {layer.name!r} weight {wname!r} has shape "
                    f"{shape} ({dtype}) in the file; the architecture needs {var.shape} "
                    f"({var.dtype})")
            pending.append((var, key))
    values = [(var, reader.array(key, var.shape, {var.dtype}, f"weight {var.path}"))
              for var, key in pending]
    _check_finite(reader.path, values)
    for var, value in values:
        var.value[...] = value


def _restore_layer_state(model, reader, states):
    if states is None:
        return
    if not isinstance(states, list):
        raise FormatError(f"{reader.path!r}: layer_state must be a list")
    layers = _stack(model)
    todo = []
    for s in states:
        if not isinstance(s, dict):
            raise FormatError(f"{reader.path!r}: layer_state entries must be objects")
        i, seed, step = s.get("layer"), s.get("stream_seed"), s.get("step")
        if not (_is_int(i) and 0 <= i < len(layers)) or \
                not hasattr(layers[i], "_stream_seed"):
            raise FormatError(f"{reader.path!r}: layer_state names layer {i!r}, "
                              "which has no random stream")
        if not (_is_int(seed) and 0 <= seed < 2 ** 63) or \
                not (_is_int(step) and 0 <= step < 2 ** 62):
            raise FormatError(f"{reader.path!r}: invalid random stream state for "
                              f"layer {layers[i].name!r}")
        todo.append((layers[i], seed, step))
    for layer, seed, step in todo:
        layer._stream_seed = seed
        layer.step = step


def _restore_optimizer(model, reader, state):
    if state is None:
        return
    opt = model.optimizer
    if not isinstance(state, dict) or not isinstance(state.get("built"), bool):
        raise FormatError(f"{reader.path!r}: optimizer_state is malformed")
    it = state.get("iterations", 0)
    if not (_is_int(it) and 0 <= it < 2 ** 62):
        raise FormatError(f"{reader.path!r}: optimizer iterations {it!r} is invalid")
    if not state["built"]:
        opt.iterations = it
        return
    entries = state.get("variables")
    layers = _stack(model)
    if not isinstance(entries, list) or len(entries) > len(model.weights):
        raise FormatError(f"{reader.path!r}: optimizer_state variables are malformed")
    variables, slot_keys = [], []
    for n, e in enumerate(entries):
        w = e.get("weight") if isinstance(e, dict) else None
        if not (isinstance(w, list) and len(w) == 2 and all(_is_int(x) for x in w)
                and 0 <= w[0] < len(layers) and 0 <= w[1] < len(layers[w[0]].weights)):
            raise FormatError(f"{reader.path!r}: optimizer variable {n} names no weight")
        var = layers[w[0]].weights[w[1]]
        if any(v is var for v in variables):
            raise FormatError(f"{reader.path!r}: optimizer variable {var.path} listed twice")
        slots = e.get("slots")
        if not isinstance(slots, dict) or set(slots) != set(opt.slot_names()) or \
                not all(isinstance(k, str) for k in slots.values()):
            raise FormatError(
                f"{reader.path!r}: optimizer slots for {var.path} are "
                f"{sorted(slots) if isinstance(slots, dict) else slots!r}; "
                f"{type(opt).__name__} has {opt.slot_names()}")
        variables.append(var)
        slot_keys.append(slots)
    # The optimizer must be built on the variables it will train, in the
    # order training hands them over: the kernels index slots by position, so
    # slots built in the file's order (a crafted file listing them reversed)
    # would pair a weight with another weight's slots -- a crash or a hang in
    # the nogil update.  So the file's entries are matched to the model's
    # trainable weights by identity and placed in the model's order.
    trainable = model._trainable_pairs()[0]
    if {id(v) for v in variables} != {id(v) for v in trainable}:
        warnings.warn(f"{reader.path!r}: the saved optimizer state covers {len(variables)} "
                      f"weight(s), the model trains {len(trainable)}; the optimizer "
                      "starts fresh", stacklevel=3)
        return
    by_id = {}
    for var, slots in zip(variables, slot_keys):
        by_id[id(var)] = {name: reader.array(key, var.shape, {var.dtype},
                                             f"optimizer slot {name!r} of {var.path}")
                          for name, key in slots.items()}
    opt.build(trainable)
    for i, var in enumerate(trainable):
        for name, arr in by_id[id(var)].items():
            opt.slots[i][name][...] = arr
    opt.iterations = it


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model saved by ``model.save()``, compiled (unless compile=False) and
    ready to resume training exactly where it stopped.

    Custom layers, losses, optimizers or metrics must be named in
    ``custom_objects={'Name': cls}`` or registered with
    ``@nncore.saving.register``; nothing named in the file is ever imported."""
    path = _path(filepath, "load_model")
    S._check_custom_objects(custom_objects)
    kind = _keras_kind(path, "load_model")
    if kind == "keras":
        return keras_files.load_keras_model(path, compile=compile)
    if kind is not None:
        return keras_files.load_legacy_h5_model(path, compile=compile)
    _check_load_path(path, "load_model")
    with NpzReader(path) as reader:
        meta = reader.metadata()
        kind = meta.get("kind")
        if kind == "weights":
            raise ValueError(f"load_model: {path!r} holds only weights (written by "
                             "save_weights); build the model and call "
                             "model.load_weights() instead")
        if kind != "model":
            raise FormatError(f"{path!r}: unknown file kind {kind!r}")
        manifest = _parse_manifest(reader, meta.get("weights"))
        with S.isolated_rng():
            model = S.deserialize_model(meta.get("model"), custom_objects,
                                        max_params=_weights_budget(reader))
        if not model.built and any(arrs for _, _, arrs in manifest):
            raise FormatError(f"{path!r}: the file holds weights for a model whose input "
                              "shape is unknown")
        _assign_same_architecture(model, reader, manifest)
        _restore_layer_state(model, reader, meta.get("layer_state"))
        compile_cfg = meta.get("compile")
        if compile and compile_cfg is not None:
            S.compile_from_config(model, compile_cfg, custom_objects)
            _restore_optimizer(model, reader, meta.get("optimizer_state"))
    return model


def load_weights(model, filepath, skip_mismatch=False):
    """Load weights saved by ``save_weights`` (or the weights of a ``save``
    file) into ``model``: by layer name when the names match, else by order;
    every shape is checked before anything is assigned."""
    path = _path(filepath, "load_weights")
    if _keras_kind(path, "load_weights") is None:
        _check_load_path(path, "load_weights")
    _require_sequential(model, "load_weights")
    if not model.built:
        if model.input_shape is None or not _stack(model):
            raise ValueError("load_weights: the model is not built; give it an Input "
                             "(or call model.build(input_shape)) before loading weights")
        with S.isolated_rng():
            model.build(model.input_shape)
    if _keras_kind(path, "load_weights") is not None:
        return keras_files.load_weights_into(model, path)
    with NpzReader(path) as reader:
        meta = reader.metadata()
        if meta.get("kind") not in ("weights", "model"):
            raise FormatError(f"{path!r}: unknown file kind {meta.get('kind')!r}")
        manifest = [m for m in _parse_manifest(reader, meta.get("weights")) if m[2]]
        layers = [l for l in _stack(model) if l.weights]
        if len(manifest) != len(layers):
            raise ValueError(
                f"load_weights: {path!r} holds weights for {len(manifest)} layer(s) "
                f"{[m[0] for m in manifest]}, but the model has {len(layers)} layer(s) "
                f"with weights {[l.name for l in layers]}: the file was saved from a "
                "different architecture")
        by_name = {m[0]: m for m in manifest}
        if set(by_name) == {l.name for l in layers} and len(by_name) == len(manifest):
            pairs = [(l, by_name[l.name]) for l in layers]
        else:
            pairs = list(zip(layers, manifest))
        pending = []
        for layer, (fname, fcls, arrs) in pairs:
            if len(arrs) != len(layer.weights):
                raise ValueError(
                    f"load_weights: layer '{layer.name}' has {len(layer.weights)} weight "
                    f"arrays {[tuple(w.shape) for w in layer.weights]}, the file's layer "
                    f"'{fname}' ({fcls}) has {len(arrs)} {[a[2] for a in arrs]}")
            for var, (wname, key, shape, dtype) in zip(layer.weights, arrs):
                if tuple(shape) != var.shape:
                    if skip_mismatch:
                        continue
                    raise ValueError(
                        f"load_weights: shape mismatch in layer '{layer.name}' weight "
                        f"'{var.name}': the model has shape {var.shape}, the file's "
                        f"layer '{fname}' weight '{wname}' has shape {tuple(shape)}")
                pending.append((var, key, dtype))
        values = [(var, reader.array(key, var.shape, {dtype}, f"weight {var.path}"))
                  for var, key, dtype in pending]
        values = [(var, v.astype(var.dtype, copy=False)) for var, v in values]
        _check_finite(path, values)
    for var, value in values:
        var.value[...] = value.astype(var.dtype, copy=False)
