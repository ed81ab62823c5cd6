"""The tasks a suite cell can run, one module each, registered in TASKS by name (base.py).

train_eval   train a VAE, then test NLL, ELBO, KL, active units     (train_eval.py)
gradients    gradient variance and SNR of an estimator against K     (gradients.py)
kernels      throughput of the fused ops and of end-to-end steps     (kernels.py)
exact        bias and std of a bound against the exact log p(x)      (exact.py)
"""

from . import exact, gradients, kernels, train_eval  # noqa: F401 - importing a task's module registers it
from .base import TASKS, RunContext, Task, TaskResult

__all__ = ["TASKS", "RunContext", "Task", "TaskResult"]
