"""model.summary(): the table Keras 3 prints (layer, output shape, params).

Drawn with the same box characters Keras (via rich) uses, without colour codes
when the output is not a terminal.

Cells are measured in terminal columns, not characters: East Asian wide
characters (Korean, Chinese, Japanese names) take two columns, combining marks
none, so a table with ``Dense(100, name="은닉층")`` keeps its right border in
line.
"""
import shutil
import sys
import unicodedata


def display_width(text):
    """Columns ``text`` takes in a terminal: 2 for wide (W) and full-width (F)
    characters, 0 for combining marks and zero-width characters, else 1."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def fit_cell(text, width, align="l"):
    """``text`` padded (or cut, ending in '…') to exactly ``width`` columns."""
    if display_width(text) > width:
        out, used = [], 0
        for ch in text:
            w = display_width(ch)
            if used + w > width - 1:
                break
            out.append(ch)
            used += w
        text = "".join(out) + "…" + " " * (width - 1 - used)   # a cut wide char leaves a gap
    pad = " " * (width - display_width(text))
    return text + pad if align == "l" else pad + text


def readable_size(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def _shape(shape):
    if shape is None:
        return "?"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def summary_lines(model, line_length=None, positions=None):
    line_length = line_length or min(88, shutil.get_terminal_size().columns - 4)
    positions = positions or [0.45, 0.80, 1.0]
    widths, current = [], 0
    for p in positions:
        w = int(p * line_length) - current
        widths.append(w)
        current += w
    # rich's table: each cell has one space of padding either side, borders between
    inner = [w - 3 for w in widths[:-1]] + [widths[-1] - 4]
    inner = [max(4, w) for w in inner]

    def row(cells, left, sep, right, aligns=("l", "l", "r")):
        parts = []
        for c, w, a in zip(cells, inner, aligns):
            parts.append(" " + fit_cell(c, w, a) + " ")
        return left + sep.join(parts) + right

    def rule(l, m, r, ch):
        return l + m.join(ch * (w + 2) for w in inner) + r

    lines = [f'Model: "{model.name}"',
             rule("┏", "┳", "┓", "━"),
             row(["Layer (type)", "Output Shape", "Param #"], "┃", "┃", "┃", ("l", "l", "r")),
             rule("┡", "╇", "┩", "━")]
    layers = model.layers
    for i, layer in enumerate(layers):
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        lines.append(row([f"{layer.name} ({type(layer).__name__})",
                          _shape(layer.output_shape), params], "│", "│", "│"))
        if i < len(layers) - 1:
            lines.append(rule("├", "┼", "┤", "─"))
    lines.append(rule("└", "┴", "┘", "─"))
    trainable = sum(w.value.size for w in model.trainable_weights)
    t_bytes = sum(w.value.nbytes for w in model.trainable_weights)
    non_tr = sum(w.value.size for w in model.non_trainable_weights)
    n_bytes = sum(w.value.nbytes for w in model.non_trainable_weights)
    opt = getattr(model, "optimizer", None)
    opt_count = opt.count_params() if opt is not None and opt.built else 0
    o_bytes = (sum(a.nbytes for a in opt.variables) + 8) if opt_count else 0
    lines.append(f" Total params: {trainable + non_tr + opt_count:,} "
                 f"({readable_size(t_bytes + n_bytes + o_bytes)})")
    lines.append(f" Trainable params: {trainable:,} ({readable_size(t_bytes)})")
    lines.append(f" Non-trainable params: {non_tr:,} ({readable_size(n_bytes)})")
    if opt_count:
        lines.append(f" Optimizer params: {opt_count:,} ({readable_size(o_bytes)})")
    return lines


def print_summary(model, line_length=None, positions=None, print_fn=None, **kwargs):
    lines = summary_lines(model, line_length, positions)
    if print_fn is not None:
        print_fn("\n".join(lines))
        return
    out = sys.stdout
    if out.isatty():  # Keras bolds the title in terminals
        lines[0] = "\x1b[1m" + lines[0] + "\x1b[0m"
    out.write("\n".join(lines) + "\n")
