"""Scikit-learn style hyper-parameter access without inheriting from scikit-learn.

Detectors store their keyword arguments unchanged as attributes of the same name; this mixin
reads the constructor signature to list them, so ``get_params``/``set_params``/``repr`` work
like scikit-learn's (which ``clone``-style code and the registry rely on).
"""

from __future__ import annotations

import inspect
from typing import Any, Self


class ParamsMixin:
    """``get_params``/``set_params``/``repr`` from the constructor's keyword arguments.

    Examples
    --------
    >>> class Toy(ParamsMixin):
    ...     def __init__(self, *, k: int = 3, seed: int | None = 0) -> None:
    ...         self.k = k
    ...         self.seed = seed
    >>> toy = Toy(k=5)
    >>> toy.get_params()
    {'k': 5, 'seed': 0}
    >>> toy.set_params(seed=1)
    Toy(k=5, seed=1)
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, parameter in signature.parameters.items()
            if name != "self"
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the hyper-parameters as given to the constructor.

        Parameters
        ----------
        deep : bool
            Accepted for scikit-learn compatibility; nested parameters are not expanded.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyper-parameters by name; unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({arguments})"
