"""Space room: search-space files (YAML) -> a typed, validated :class:`SearchSpace`.

Sampling is the search room's job; this room only says what may be sampled.
"""

from archsearch.space.schema import Param, SearchSpace, SpaceRule, default_space_path, load_space

__all__ = ["Param", "SearchSpace", "SpaceRule", "default_space_path", "load_space"]
