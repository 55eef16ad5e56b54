"""The Ray adapter: the only modules of archsearch that import Ray.

``runtime`` starts an embedded Ray or joins a cluster; ``tune_parts`` holds the Ray Tune
adapters (trainable, searcher, scheduler, callback) that defer every decision to the Ray-free
:class:`~archsearch.search.coordinator.Coordinator`; ``tuner`` runs a search's trials and then
its finalists' folds (``finalists``) as Ray tasks.
"""

from archsearch.search.ray_backend.runtime import RayRuntime, ray_runtime
from archsearch.search.ray_backend.tuner import run_on_ray

__all__ = ["RayRuntime", "ray_runtime", "run_on_ray"]
