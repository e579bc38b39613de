"""``st.summary(model, input_shape)``: a table of layers, output shapes and parameter counts.

It runs one forward pass on zeros (in evaluation mode, without recording a
graph, so batch-norm statistics and the random generators are left untouched)
with a forward hook on every module, and lists each leaf module (and any
module holding parameters of its own) in the order it ran. This works for
any model, Sequential or custom, with branches or skip connections.

Example::

    >>> table = st.summary(nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
    ...                                  nn.Flatten(), nn.Linear(6 * 14 * 14, 10)), (1, 1, 28, 28))
    Input: (N, 1, 28, 28)
    Layer  Type       Output shape    Params
    ========================================
    0      Conv2d     (N, 6, 28, 28)     156
    1      Tanh       (N, 6, 28, 28)       0
    2      AvgPool2d  (N, 6, 14, 14)       0
    3      Flatten    (N, 1176)            0
    4      Linear     (N, 10)         11,770
    ========================================
    Total params: 11,926
    Trainable params: 11,926
    Non-trainable params: 0
    >>> table.total_params
    11926
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tensor import Tensor, no_grad

__all__ = ["summary", "ModelSummary", "SummaryRow", "module_html"]


@dataclass
class SummaryRow:
    """One call of one module: its dotted name, class, output shape and own parameters."""
    name: str
    type: str
    output_shape: tuple | list
    params: int


@dataclass
class ModelSummary:
    """What ``summary`` found; ``str()`` gives the printed table."""
    input_shape: tuple
    rows: list[SummaryRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0

    def __str__(self) -> str:
        return _render(self)

    def _repr_html_(self) -> str:
        """The same table as HTML, for notebooks."""
        batch = self.input_shape[0] if self.input_shape else None
        rows = [(r.name, r.type, _show_shape(r.output_shape, batch), f"{r.params:,}") for r in self.rows]
        foot = (f"Total params: {self.total_params:,} (trainable {self.trainable_params:,}, "
                f"non-trainable {self.non_trainable_params:,})")
        return _html_table(f"Input: {_show_shape(self.input_shape, batch)}",
                           ("Layer", "Type", "Output shape", "Params"), rows, foot)


def _shape_of(out):
    if isinstance(out, (Tensor, np.ndarray)):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        return [_shape_of(o) for o in out]
    return None


def _show_shape(shape, batch: int | None) -> str:
    """Shapes with the batch axis written N (as the table is about any batch size)."""
    if shape is None:
        return "-"
    if isinstance(shape, list):
        return ", ".join(_show_shape(s, batch) for s in shape)
    dims = [str(d) for d in shape]
    if dims and batch is not None and shape[0] == batch:
        dims[0] = "N"
    return "(" + ", ".join(dims) + (",)" if len(dims) == 1 else ")")


def summary(model, input_shape, print_fn=print, dtype=np.float32) -> ModelSummary:
    """Print and return a table of ``model``'s layers for an input of ``input_shape``.

    Args:
        model: any Module.
        input_shape: the shape of one input batch including the batch axis,
            e.g. ``(1, 1, 28, 28)``; in the table the batch axis shows as N.
        print_fn: called with each line of the table (None prints nothing).
        dtype: dtype of the zeros fed to the model.

    Returns:
        a :class:`ModelSummary` with one row per module call and the totals
        (parameters shared by several modules are counted once).
    """
    # what a Module has (checked by duck type: summary sits beside nn, which uses it for notebooks)
    if not all(callable(getattr(model, a, None)) for a in ("modules", "named_modules", "register_forward_hook")):
        raise TypeError(f"summary expects a Module, got {type(model).__name__}")
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    input_shape = tuple(int(d) for d in input_shape)
    result = ModelSummary(input_shape=input_shape)
    names = {id(m): name for name, m in model.named_modules()}
    counted: set[int] = set()

    def record(module, inputs, output):
        own = [p for p in module._parameters.values() if p is not None]
        if module._modules and not own:
            return                       # a container: its children have their own rows
        fresh = [p for p in own if id(p) not in counted]
        counted.update(id(p) for p in fresh)
        result.rows.append(SummaryRow(
            name=names.get(id(module), "") or type(module).__name__,
            type=type(module).__name__,
            output_shape=_shape_of(output),
            params=int(sum(p.size for p in fresh))))

    modes = {id(m): m.training for m in model.modules()}
    handles = [m.register_forward_hook(record) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            model(Tensor(np.zeros(input_shape, dtype=dtype), dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            object.__setattr__(m, "training", modes[id(m)])

    params = list(model.parameters())
    result.total_params = int(sum(p.size for p in params))
    result.trainable_params = int(sum(p.size for p in params if p.requires_grad))
    result.non_trainable_params = result.total_params - result.trainable_params
    if print_fn is not None:
        for line in _render(result).split("\n"):
            print_fn(line)
    return result


def _render(s: ModelSummary) -> str:
    batch = s.input_shape[0] if s.input_shape else None
    table = [(r.name, r.type, _show_shape(r.output_shape, batch), f"{r.params:,}") for r in s.rows]
    head = ("Layer", "Type", "Output shape", "Params")
    widths = [max([len(head[i])] + [len(row[i]) for row in table]) for i in range(4)]

    def line(cells):
        return (f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  "
                f"{cells[2]:<{widths[2]}}  {cells[3]:>{widths[3]}}")

    rule = "=" * len(line(head))
    out = [f"Input: {_show_shape(s.input_shape, batch)}", line(head), rule]
    out += [line(row) for row in table]
    out += [rule,
            f"Total params: {s.total_params:,}",
            f"Trainable params: {s.trainable_params:,}",
            f"Non-trainable params: {s.non_trainable_params:,}"]
    return "\n".join(out)


def module_html(model) -> str:
    """A module as notebooks show it: ``summary``'s table for ``model.input_shape`` (batch 1) when the
    model has one; else (or when that forward fails) its layers, their settings and parameter counts."""
    shape = getattr(model, "input_shape", None)
    if shape:
        try:
            return summary(model, (1,) + tuple(shape), print_fn=None)._repr_html_()
        except Exception:                # a model that cannot run on zeros of that shape: the table without shapes
            pass
    rows: list[tuple[str, str, str, str]] = []
    counted: set[int] = set()                  # ids of parameters already listed (shared ones count once)
    for name, m in model.named_modules():
        own = [p for p in m._parameters.values() if p is not None]
        if m._modules and not own:
            continue
        fresh = [p for p in own if id(p) not in counted]
        counted.update(id(p) for p in fresh)
        rows.append((name or type(m).__name__, type(m).__name__, m.extra_repr(), f"{sum(p.size for p in fresh):,}"))
    total = sum(p.size for p in model.parameters())
    return _html_table(type(model).__name__, ("Layer", "Type", "Settings", "Params"), rows,
                       f"Total params: {total:,}")


def _html_table(caption: str, head, rows, foot: str) -> str:
    import html
    right = len(head) - 1                                       # the parameter counts, right-aligned

    def cells(tag, values):
        return "".join(f"<{tag} style='text-align:{'right' if i == right else 'left'}'>{html.escape(str(v))}</{tag}>"
                       for i, v in enumerate(values))
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return (f"<table><caption style='text-align:left'>{html.escape(caption)}</caption>"
            f"<thead><tr>{cells('th', head)}</tr></thead><tbody>{body}</tbody>"
            f"<tfoot><tr><td colspan='{len(head)}' style='text-align:left'><b>{html.escape(foot)}</b></td></tr>"
            f"</tfoot></table>")
