"""monosem_lib: the toy models of "Engineering Monosemanticity in Toy Models".

Jermyn, Schiefer and Hubinger (2022), arXiv:2211.09169. The package is built in layers, each
a subpackage that imports only from the layers before it (``tests/test_layers.py``):

- ``core``: config and presets, data, model, optimizers, training, timing, references, sparse
  autoencoders;
- ``analysis``: metrics, probes, neuron classes, verdicts and the interpretation report;
- ``store``: files (no pickles), the run cache, results and sweep summaries;
- ``paper``: Table 1, the five claims, the decay recipe, the decay and SAE studies and the
  reproduction's stored data;
- ``book``: the chapters' batches, views, tables, figures, sliders and exercises (needs the
  ``[book]`` extra);
- ``apps``: the command line and the benchmark.

``import monosem_lib as ml`` gives this flat API over them, and needs only torch and numpy;
``ml.book``, ``ml.claims`` and the other modules below load on first use.
"""

import importlib

from .analysis.classes import classify_neurons
from .analysis.metrics import (
    MONO_THRESHOLD,
    evaluate_loss,
    monosemanticity,
    neuron_stats,
    single_feature_activations,
    summarize,
    training_curves,
)
from .analysis.probes import (
    ablation_loss,
    activity_fraction,
    feature_response,
    interference,
    linear_target,
    neuron_alignment,
    subset_map,
    subspace_analysis,
)
from .analysis.report import interpret
from .analysis.report_text import compare_sets, format_report, report_dict
from .core.config import PRESETS, Config, ConfigError, preset, scale
from .core.data import feature_probabilities, make_projection, make_world, zero_loss
from .core.model import ToyModel
from .core.sae import SAE, SAEConfig, calibrate_threshold
from .core.sae_training import SAERateSweep, SAERun, activation_source, sweep_sae_lr, train_sae
from .core.training import Run, TrainingDiverged, train, train_many
from .paper.recipe import decay_for, decay_for_shrink, total_shrink
from .paper.table1 import (
    BOOK_RULES,
    ENGINEERED,
    TABLE1,
    book_config,
    sweep_configs,
    sweep_values,
)
from .store.cache import RunCache, load_or_train
from .store.files import load_run, load_summary
from .store.results import Results, load_results
from .store.sae_files import load_sae, save_sae
from .store.summaries import merge_summaries, save_run, save_summary
from .version import RESULTS_VERSION, __version__

# Modules reached as attributes (``ml.plots``, ``from monosem_lib import claims``): loaded on
# first use, so that plain training and the CLI never import matplotlib, pandas or ipywidgets.
_LAZY_MODULES = {
    "book": "book",
    "plots": "book",  # earlier names of parts of the book layer
    "widgets": "book",
    "experiments": "book",
    "exercises": "book.exercises",
    "bench": "apps.bench",
    "reproduction": "paper.reproduction",
    "responses": "analysis.responses",
    "claims": "paper.claims",
    "dictionary": "analysis.dictionary",
    "sae_scoring": "analysis.sae_scoring",
    "recipe": "paper.recipe",
    "decay_study": "paper.decay_study",
    "decay_fit": "paper.decay_fit",
    "decay_facts": "paper.decay_facts",
    "facts": "paper.facts",
    "sae_study": "paper.sae_study",
    "sae_frontier": "paper.sae_frontier",
    "sae_frontier_report": "paper.sae_frontier_report",
    "sae_frontier_facts": "paper.sae_frontier_facts",
}


def __getattr__(name: str):
    if name in _LAZY_MODULES:
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
    "calibrate_threshold",
    "SAERateSweep",
    "sweep_sae_lr",
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
    "decay_for",
    "decay_for_shrink",
]
