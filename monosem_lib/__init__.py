"""monosem_lib: the toy models of "Engineering Monosemanticity in Toy Models".

Jermyn, Schiefer and Hubinger (2022), arXiv:2211.09169. The modules follow the data flow
config -> data -> model -> training -> metrics -> (interpretation, storage, plots, widgets).
"""

from .analysis.interpretation import (
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
from .analysis.metrics import (
    MONO_THRESHOLD,
    evaluate_loss,
    monosemanticity,
    neuron_stats,
    single_feature_activations,
    summarize,
    training_curves,
)
from .core.config import PRESETS, Config, ConfigError, preset, scale
from .core.data import feature_probabilities, make_projection, make_world, zero_loss
from .core.model import ToyModel
from .core.sae import SAE, SAEConfig
from .core.sae_training import SAERun, activation_source, train_sae
from .core.training import Run, TrainingDiverged, train, train_many
from .paper.table1 import (
    BOOK_RULES,
    ENGINEERED,
    TABLE1,
    book_config,
    decay_for_shrink,
    sweep_configs,
    sweep_values,
    total_shrink,
)
from .store.cache import RunCache, load_or_train
from .store.files import load_run, load_summary
from .store.results import Results, load_results, merge_summaries, save_run, save_summary
from .store.sae_files import load_sae, save_sae
from .version import RESULTS_VERSION, __version__

# Modules reached as attributes (``ml.plots``, ``from monosem_lib import claims``): loaded on
# first use, so that plain training and the CLI never import matplotlib, pandas or ipywidgets.
_LAZY_MODULES = {
    "plots": "book.plots",
    "widgets": "book.widgets",
    "exercises": "book.exercises",
    "experiments": "book.experiments",
    "bench": "apps.bench",
    "reproduction": "paper.reproduction",
    "responses": "analysis.responses",
    "claims": "paper.claims",
    "dictionary": "analysis.dictionary",
    "recipe": "paper.recipe",
}


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f".{_LAZY_MODULES[name]}", __name__)
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
    "SAEConfig",
    "SAE",
    "SAERun",
    "train_sae",
    "activation_source",
    "save_sae",
    "load_sae",
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
