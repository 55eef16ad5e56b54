"""The shipped knowledge base: a task corpus (``corpus.yaml``) and the performance matrix of
every family on it (``matrix.csv`` with its provenance, ``matrix.json``), built by
``benchmarks/knowledge.py`` and read by the recommender (docs/knowledge-base.md)."""

from archsearch.recommend.knowledge.corpus import CORPUS_FILE, Corpus, CorpusTask, load_corpus
from archsearch.recommend.knowledge.matrix import (
    COMPLETED,
    FAILED,
    MATRIX_FILE,
    STANDARD_BUDGET,
    Cell,
    CellBudget,
    CorpusTaskFacts,
    KnowledgeBase,
    append_cell,
    load_knowledge_base,
    read_cells,
    read_sidecar,
    replace_text,
    sidecar_path,
    write_cells,
    write_sidecar,
)

__all__ = ["COMPLETED", "CORPUS_FILE", "FAILED", "MATRIX_FILE", "STANDARD_BUDGET", "Cell",
           "CellBudget", "Corpus", "CorpusTask", "CorpusTaskFacts", "KnowledgeBase",
           "append_cell", "load_corpus", "load_knowledge_base", "read_cells", "read_sidecar",
           "replace_text", "sidecar_path", "write_cells", "write_sidecar"]
