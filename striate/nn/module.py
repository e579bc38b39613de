"""Module: the base of every layer and model, and the containers built on it.

A module holds three kinds of state, registered automatically by assignment:

* parameters (``Parameter``, a Tensor that requires grad): what the optimizer trains;
* buffers (plain arrays, e.g. batch norm's running statistics): saved, not trained;
* sub-modules.

``state_dict()`` collects parameters and buffers under dotted names
(``"c1.weight"``), ``load_state_dict()`` puts them back, checking names and shapes.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ..tensor import Tensor, TensorLike

__all__ = ["Parameter", "Module", "Sequential", "ModuleList"]


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (``requires_grad=True`` by default)."""

    def __init__(self, data: TensorLike, requires_grad: bool = True, dtype: npt.DTypeLike | None = None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None and hasattr(data, "dtype") and np.dtype(data.dtype) == np.float64:
            dtype = np.float64
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class: subclasses set their parameters and sub-modules in ``__init__``
    and define ``forward``; calling the module calls ``forward``.

    Example:
        >>> class Tiny(Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         return self.fc(x)
        >>> [name for name, _ in Tiny().named_parameters()]
        ['fc.weight', 'fc.bias']
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # -- registration --------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning attribute {name!r}")
        if isinstance(value, Parameter):
            target = self._parameters
        elif isinstance(value, Module):
            target = self._modules
        elif name in self.__dict__.get("_buffer_names", ()):
            target = self._buffers
        else:
            target = None
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not target:
                registry.pop(name, None)
        if target is None:
            object.__setattr__(self, name, value)
            return
        target[name] = value          # replacing keeps the original position (state_dict order)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Any) -> None:
        """Register a non-trainable array (or None) saved in ``state_dict``."""
        if "_buffer_names" not in self.__dict__:
            object.__setattr__(self, "_buffer_names", set())
        self._buffer_names.add(name)
        setattr(self, name, value)

    def register_parameter(self, name: str, value: Parameter | None) -> None:
        if value is None:
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, value)

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    # -- traversal -----------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and all sub-modules, depth first, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = list(module._modules.items())
            for child_name, child in reversed(children):
                stack.append((f"{name}.{child_name}" if name else child_name, child))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers():
            yield b

    def num_parameters(self, trainable_only: bool = True) -> int:
        """How many numbers the model learns (those with requires_grad, by default)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- modes ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout drops, batch norm uses batch statistics); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode; same as ``train(False)``."""
        return self.train(False)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[Module]:
        """``with model.evaluating():`` evaluation mode inside; after, every submodule's own
        mode as it was (a model with some parts frozen in eval mode keeps them so)."""
        modes = [(m, m.training) for m in self.modules()]
        try:
            yield self.eval()
        finally:
            for m, mode in modes:
                object.__setattr__(m, "training", mode)

    def zero_grad(self) -> None:
        """Forget the gradients of all parameters."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # -- state ---------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and buffers by dotted name, as arrays (not copies).

        Module by module (its parameters, then its buffers, then its children),
        PyTorch's order; a parameter shared by two modules appears under both names.
        """
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[prefix + name] = p.data
            for name, b in module._buffers.items():
                if b is not None:
                    state[prefix + name] = b
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays from ``state`` into this module's parameters and buffers.

        With ``strict`` (the default), missing or unexpected names are an error,
        as is any shape mismatch. Returns ``(missing, unexpected)``.
        """
        own = OrderedDict()
        for module_name, module in self.named_modules():
            for name, p in module._parameters.items():
                if p is not None:
                    own[f"{module_name}.{name}" if module_name else name] = (module, name, p.data)
            for name, b in module._buffers.items():
                if b is not None:
                    own[f"{module_name}.{name}" if module_name else name] = (module, name, b)
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
            raise KeyError(f"load_state_dict for {type(self).__name__}: " + "; ".join(parts)
                           + " (is this checkpoint from another model?)")
        mismatched = []
        for key, (_, _, target) in own.items():
            if key not in state:
                continue
            value = state[key]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != target.shape:
                mismatched.append(f"{key}: expected {tuple(target.shape)}, got {tuple(value.shape)}")
        if mismatched:
            raise ValueError(f"load_state_dict for {type(self).__name__}: shape mismatch for "
                             + "; ".join(mismatched[:8]))
        for key, (_, _, target) in own.items():
            if key in state:
                value = state[key]
                value = value.data if isinstance(value, Tensor) else np.asarray(value)
                np.copyto(target, value, casting="unsafe")
        return missing, unexpected

    # -- calling -------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        for hook in tuple(self.__dict__.get("_forward_hooks", {}).values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_hook(self, hook: Callable[..., Any]) -> HookHandle:
        """Call ``hook(module, inputs, output)`` after every forward of this module.

        A hook that returns something other than None replaces the output.
        Returns a handle whose ``remove()`` takes the hook off again
        (``st.summary`` uses this to record output shapes).
        """
        hooks = self._forward_hooks
        handle = HookHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def extra_repr(self) -> str:
        """One line of configuration shown by ``repr`` (override in layers)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}(" + (extra if extra else "")]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        lines.append(")")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """How a notebook shows a module: ``st.summary``'s table for its ``input_shape`` (when it
        has one; else the layers and their parameter counts)."""
        from ..summary import module_html
        return module_html(self)


class HookHandle:
    """Returned by ``register_forward_hook``; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = HookHandle._next_id
        HookHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class _Container(Module):
    """What Sequential and ModuleList share: submodules in order, appended under the next number."""

    def append(self, module: Module) -> _Container:
        """Add ``module`` at the end; returns the container itself (Sequential or ModuleList)."""
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(_Container):
    """Modules applied one after another: ``Sequential(conv, relu, pool)(x)``.

    Takes modules as arguments (named "0", "1", ...) or one OrderedDict of name → module.
    """

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(f"Sequential expects Modules, got {type(module).__name__} at position {i}")
                self.add_module(str(i), module)

    def forward(self, x: TensorLike) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]


class ModuleList(_Container):
    """A list of modules whose parameters are registered (for models with branches or loops)."""

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        for module in modules:
            self.append(module)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]
