"""What one run is (RunSpec) and the profiles that size runs."""

from __future__ import annotations

import dataclasses
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
    # Its times say nothing (a profile to try every path): runs share a process per Keras
    # backend (runner.groups), which saves a framework's import and warm-up a run, compare
    # times inference with one call, and nothing calibrates by timing (Implementation.untimed).
    times_say_nothing: bool = False


PROFILES = {
    "quick": Profile("quick", budget_s=10, timeout_s=240, seeds=1, all_configs=False,
                     jacobian_mnist_samples=4),
    "full": Profile("full", budget_s=60, timeout_s=1800, seeds=3, all_configs=True,
                    jacobian_mnist_samples=50),
    # Tiny runs for the harness's own tests: every experiment's paths once.
    # reverse4 takes xor's paths (a full batch, sigmoid, MSE), so it is left out.
    "smoke": Profile("smoke", budget_s=3, timeout_s=120, seeds=1, all_configs=False,
                     jacobian_mnist_samples=2, tasks=("mnist", "xor"),
                     times_say_nothing=True),
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
class Option:
    """An option an experiment takes (``Experiment.options``): ``groundup run --NAME``,
    listed under the experiment in ``run --help``, and saved in run.json by its name."""

    name: str
    help: str
    default: object = False  # a bool option is a switch; any other type takes a value
    type: type = bool

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Selection:
    """What a run asks for: saved to run.json as is, and read back whole on --resume.
    ``options``: the chosen experiments' own options, (name, value) pairs by name."""

    tasks: tuple[str, ...]
    impls: tuple[str, ...] | None = None  # None: each experiment's default implementations
    seeds: int | None = None              # None: the experiment's or the profile's default
    data_dir: str | None = None
    experiments: tuple[str, ...] = ("compare",)
    profile: str = "quick"
    memory_budget_mib: float | None = None  # None: half the available memory
    options: tuple[tuple[str, object], ...] = ()

    def __post_init__(self):  # lists in, tuples kept: a selection compares and hashes whole
        for name in ("tasks", "impls", "experiments"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "options", tuple(sorted(dict(self.options).items())))

    def option(self, option: Option) -> object:
        """The value of an experiment's ``option``: the one asked for, or its default."""
        return dict(self.options).get(option.name, option.default)

    def saved(self) -> dict:
        """run.json's fields: the selection's, then each option by its name."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "options"}
        return {**{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()},
                **dict(self.options)}

    @classmethod
    def from_saved(cls, found: dict, options: dict[str, Option]) -> Selection:
        """The selection a run.json's fields describe; ``options``: those the experiments
        declare. Raises ValueError naming the first field that is missing, unknown or of
        the wrong type."""
        types = {"tasks": (list,), "impls": (list, type(None)), "seeds": (int, type(None)),
                 "data_dir": (str, type(None)), "experiments": (list,), "profile": (str,),
                 "memory_budget_mib": (int, float, type(None)),
                 **{name: (int, float) if o.type is float else (o.type,)
                    for name, o in options.items()}}
        for name, allowed in types.items():
            if name not in found and name not in options:
                raise ValueError(f"has no {name!r} field")
            value = found.get(name, options[name].default if name in options else None)
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise ValueError(f"{name!r} is {value!r}, not "
                                 f"{' or '.join(t.__name__ for t in allowed)}")
        unknown = sorted(set(found) - set(types))
        if unknown:
            raise ValueError(f"has an unknown field {unknown[0]!r}")
        given = {k: found[k] for k in options if k in found and found[k] != options[k].default}
        return cls(**{k: found[k] for k in types if k not in options}, options=given.items())
