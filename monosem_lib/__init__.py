"""monosem_lib: the toy models of "Engineering Monosemanticity in Toy Models".

Jermyn, Schiefer and Hubinger (2022), arXiv:2211.09169. The modules follow the data flow
config -> data -> model -> training -> metrics -> (interpretation, storage, plots, widgets).
"""

from .cache import RunCache, load_or_train
from .config import PRESETS, Config, ConfigError, preset, scale
from .data import feature_probabilities, make_projection, make_world, zero_loss
from .interpretation import (
    ablation_loss,
    activity_fraction,
    classify_neurons,
    compare_sets,
    feature_response,
    format_report,
    interference,
    interpret,
    linear_target,
    neuron_alignment,
    report_dict,
    subset_map,
    subspace_analysis,
)
from .metrics import (
    MONO_THRESHOLD,
    evaluate_loss,
    monosemanticity,
    neuron_stats,
    single_feature_activations,
    summarize,
    training_curves,
)
from .model import ToyModel
from .results import Results, load_results, merge_summaries, save_run, save_summary
from .storage import load_run, load_summary
from .sweeps import (
    BOOK_RULES,
    ENGINEERED,
    TABLE1,
    book_config,
    decay_for_shrink,
    sweep_configs,
    sweep_values,
    total_shrink,
)
from .training import Run, TrainingDiverged, train, train_many
from .version import RESULTS_VERSION, __version__


def __getattr__(name: str):
    # Figures and widgets pull in matplotlib (and ipywidgets); load them on first use so the
    # CLI and plain training stay light.
    if name in (
        "plots",
        "widgets",
        "exercises",
        "experiments",
        "bench",
        "reproduction",
        "responses",
        "claims",
    ):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'monosem_lib' has no attribute {name!r}")


__all__ = [
    "__version__",
    "RESULTS_VERSION",
    "Config",
    "ConfigError",
    "PRESETS",
    "preset",
    "scale",
    "feature_probabilities",
    "make_projection",
    "make_world",
    "zero_loss",
    "ToyModel",
    "Run",
    "TrainingDiverged",
    "train",
    "train_many",
    "MONO_THRESHOLD",
    "evaluate_loss",
    "monosemanticity",
    "neuron_stats",
    "single_feature_activations",
    "summarize",
    "training_curves",
    "ablation_loss",
    "activity_fraction",
    "classify_neurons",
    "interference",
    "interpret",
    "neuron_alignment",
    "feature_response",
    "subspace_analysis",
    "subset_map",
    "compare_sets",
    "format_report",
    "linear_target",
    "report_dict",
    "RunCache",
    "Results",
    "load_results",
    "merge_summaries",
    "load_or_train",
    "load_run",
    "save_run",
    "load_summary",
    "save_summary",
    "BOOK_RULES",
    "ENGINEERED",
    "TABLE1",
    "book_config",
    "sweep_configs",
    "sweep_values",
    "total_shrink",
    "decay_for_shrink",
]
