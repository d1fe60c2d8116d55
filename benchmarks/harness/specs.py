"""What one run is (RunSpec) and the profiles that size runs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    budget_s: float     # training time a run may spend before it is extrapolated
    timeout_s: float    # wall time after which a run is killed
    seeds: int          # default number of seeds
    all_configs: bool   # every configuration of a task, or only its first
    jacobian_mnist_samples: int  # scratch-jacobian trains MNIST on this many samples
    tasks: tuple[str, ...] = ("mnist", "reverse4", "xor")  # the tasks run when --task is not


PROFILES = {
    "quick": Profile("quick", budget_s=10, timeout_s=240, seeds=1, all_configs=False,
                     jacobian_mnist_samples=4),
    "full": Profile("full", budget_s=60, timeout_s=1800, seeds=3, all_configs=True,
                    jacobian_mnist_samples=50),
    # Tiny runs for the harness's own tests: every experiment x implementation path once.
    # reverse4 takes xor's paths (a full batch, sigmoid, MSE), so it is left out.
    "smoke": Profile("smoke", budget_s=3, timeout_s=120, seeds=1, all_configs=False,
                     jacobian_mnist_samples=2, tasks=("mnist", "xor")),
}


@dataclass
class RunSpec:
    """One (experiment, task, config, impl, seed): everything a worker needs to run it."""

    experiment: str
    task: str
    config: str
    impl: str
    seed: int
    profile: str
    epochs: int
    budget_s: float
    timeout_s: float
    dtype: str = "float32"
    train_samples: int | None = None
    data_dir: str | None = None
    memory_budget_mib: float | None = None  # None: half the available memory
    stop_at_target: bool = False  # end training once the target is met
    extra: dict = field(default_factory=dict)  # an experiment's own settings (variants)

    @property
    def key(self) -> tuple:
        return (self.experiment, self.task, self.config, self.impl, self.seed)

    def label(self) -> str:
        return f"{self.task}/{self.config} {self.impl} seed {self.seed}"


@dataclass(frozen=True)
class Selection:
    """What the user asked ``groundup run`` for."""

    tasks: list[str]
    impls: list[str] | None  # None: the experiment's default implementations
    seeds: int | None        # None: the experiment's or the profile's default
    data_dir: str | None = None
    variants: bool = False
    memory_budget_mib: float | None = None
