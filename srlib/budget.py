"""How much compute a notebook, test or script may spend: the one reader of ``SRLIB_BUDGET``.

Three budgets exist:

* ``smoke``: seconds per notebook; what the tests use to check that every cell runs.
* ``cpu``:   the book's default; each notebook stays within about 3 minutes on 2 CPU cores.
* ``gpu``:   chosen automatically when CUDA is present; longer training, closer to the papers.

Notebooks never hard-code step counts: they state the CPU figure once and ask the budget to scale
it (``get_budget().steps(cpu=600)``), so the same notebook is a quick smoke test, a laptop lesson or
a longer GPU run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

BUDGETS = ("smoke", "cpu", "gpu")
ENV_VAR = "SRLIB_BUDGET"


@dataclass(frozen=True)
class Budget:
    """A named compute budget.

    Args:
        name: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        reason: why this budget was chosen (shown by notebooks so readers know what ran).
    """

    name: str
    reason: str = ""

    # smoke runs a handful of steps whatever the CPU figure; gpu trains 20x longer than cpu.
    SMOKE_STEPS = 3
    GPU_FACTOR = 20

    def steps(self, cpu: int) -> int:
        """Number of steps for this budget, given the count that fits the ``cpu`` budget.

        Example:
            >>> Budget("smoke").steps(cpu=500), Budget("cpu").steps(cpu=500), Budget("gpu").steps(cpu=500)
            (3, 500, 10000)
        """
        if cpu < 1:
            raise ValueError(f"cpu step count must be >= 1, got {cpu}")
        return {"smoke": min(self.SMOKE_STEPS, cpu), "cpu": cpu, "gpu": cpu * self.GPU_FACTOR}[self.name]

    def pick(self, smoke, cpu, gpu=None):
        """Any other budget-dependent value (image count, crop size, ...); ``gpu`` defaults to ``cpu``.

        Example:
            >>> Budget("smoke").pick(smoke=1, cpu=4, gpu=16)
            1
        """
        return {"smoke": smoke, "cpu": cpu, "gpu": cpu if gpu is None else gpu}[self.name]

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"

    def __str__(self) -> str:
        return f"budget '{self.name}' ({self.reason})" if self.reason else f"budget '{self.name}'"


def get_budget() -> Budget:
    """Read ``SRLIB_BUDGET`` (smoke/cpu/gpu); unset means ``gpu`` when CUDA is present, else ``cpu``.

    Raises:
        ValueError: the variable holds something else (the message lists the valid names).
    """
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value:
        if value not in BUDGETS:
            raise ValueError(f"{ENV_VAR}={value!r} is not a budget; use one of {', '.join(BUDGETS)}")
        return Budget(value, f"set by {ENV_VAR}")
    if torch.cuda.is_available():
        return Budget("gpu", f"CUDA device found and {ENV_VAR} unset")
    return Budget("cpu", f"no CUDA device and {ENV_VAR} unset")
