"""The book layer: what the chapters call, as one flat namespace.

``from monosem_lib import book`` gives the chapters' batches (``batches``), computed views
(``views``), tables (``tables``), figures (``figure_kit``, ``plots``, ``scale_plots``), sliders
(``live``, ``explorers``, ``bias_explorer``, ``inspector``), the SAE chapter's comparisons,
figures and slider (``sae_compare``, ``sae_chapter``, ``sae_explorer``; the study itself is
``paper.sae_study``) and exercises (``exercises``, also reached as ``book.exercises``). Needs
the ``[book]`` extra (pandas, matplotlib, ipywidgets, IPython).
"""

# The flat namespace: every module's public names (its __all__).
from . import (
    batches,
    bias_explorer,
    exercises,
    explorers,
    figure_kit,
    grid_slider,
    heatmap_marks,
    inspector,
    inspector_static,
    intro,
    live,
    plots,
    prose,
    sae_chapter,
    sae_compare,
    sae_explorer,
    sae_frontier_plots,
    scale_plots,
    shrink_grid,
    stored,
    study_plots,
    study_tables,
    tables,
    task_plots,
    text,
    views,
    web,
)
from .batches import *  # noqa: F403
from .bias_explorer import *  # noqa: F403
from .explorers import *  # noqa: F403
from .figure_kit import *  # noqa: F403
from .grid_slider import *  # noqa: F403
from .heatmap_marks import *  # noqa: F403
from .inspector import *  # noqa: F403
from .inspector_static import *  # noqa: F403
from .intro import *  # noqa: F403
from .live import *  # noqa: F403
from .plots import *  # noqa: F403
from .prose import *  # noqa: F403
from .sae_chapter import *  # noqa: F403
from .sae_compare import *  # noqa: F403
from .sae_explorer import *  # noqa: F403
from .sae_frontier_plots import *  # noqa: F403
from .scale_plots import *  # noqa: F403
from .shrink_grid import *  # noqa: F403
from .stored import *  # noqa: F403
from .study_plots import *  # noqa: F403
from .study_tables import *  # noqa: F403
from .tables import *  # noqa: F403
from .task_plots import *  # noqa: F403
from .text import *  # noqa: F403
from .views import *  # noqa: F403
from .web import *  # noqa: F403

__all__ = [
    "exercises",
    *batches.__all__,
    *views.__all__,
    *tables.__all__,
    *figure_kit.__all__,
    *heatmap_marks.__all__,
    *plots.__all__,
    *task_plots.__all__,
    *scale_plots.__all__,
    *stored.__all__,
    *intro.__all__,
    *study_plots.__all__,
    *study_tables.__all__,
    *text.__all__,
    *prose.__all__,
    *live.__all__,
    *explorers.__all__,
    *bias_explorer.__all__,
    *shrink_grid.__all__,
    *grid_slider.__all__,
    *inspector.__all__,
    *inspector_static.__all__,
    *sae_compare.__all__,
    *sae_chapter.__all__,
    *sae_explorer.__all__,
    *sae_frontier_plots.__all__,
    *web.__all__,
]
