"""Model outputs: dataclasses that are also ordered dicts, as transformers' `ModelOutput` is.

Fields that are None are left out of the dict view: `keys()`, iteration (which yields keys, as
a dict's does), `len()`, `to_tuple()` and integer indexing see only the fields that are set, so
`out[0]` is the first output that exists and `out["logits"]` is `out.logits`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

import torch


class ModelOutput(OrderedDict):
    """Base of the output dataclasses; the dataclass fields are the only keys a dict may hold."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                super().__setitem__(f.name, value)

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            return super().__getitem__(key)
        return self.to_tuple()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if value is not None and name in {f.name for f in fields(self)}:
            super().__setitem__(name, value)
        elif value is None and name in self:
            super().__delitem__(name)
        super().__setattr__(name, value)

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"cannot delete {key!r} from a {type(self).__name__}; set the field to None")

    def setdefault(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} has fixed fields; set them as attributes")

    def pop(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} has fixed fields; set them to None instead")

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{type(self).__name__} has fixed fields; set them as attributes")

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self[k] for k in self.keys())

    def __reduce__(self) -> Any:  # pickling and deepcopy: rebuild from the fields
        return type(self), tuple(getattr(self, f.name) for f in fields(self))


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class VideoMAEForPreTrainingOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class ImageClassifierOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
