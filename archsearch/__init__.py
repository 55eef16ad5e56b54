"""archsearch: measure sequence-model families on your data and hardware, then recommend one."""

__version__ = "0.1.0"
