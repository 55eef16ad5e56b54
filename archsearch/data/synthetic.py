"""Synthetic benchmark tasks, generated offline from a seed.

Every task here produces one output per sequence (the data contract has no per-step targets),
so the classic sequence-to-sequence tasks are posed in their single-query form: the last step
asks for one item, and because the query arrives only at the end, the model must keep every
item it may be asked about. ``length`` is always the total (padded) sequence length ``T``.
Tokens are one-hot channels. The token tasks take their alphabet's size (``vocab``), and every
task can have noisy targets (:func:`with_target_noise`): the generators' parameters span the
length, the lag of the dependence (set by the length), the vocabulary and the noise.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from archsearch.data.dataset import SequenceDataset
from archsearch.errors import DataError
from archsearch.types import TaskKind


def _one_hot(tokens: np.ndarray, vocab: int) -> np.ndarray:
    """(n, T) int tokens in 0..vocab-1 -> (n, T, vocab) float32."""
    return np.eye(vocab, dtype=np.float32)[tokens]


def _need(name: str, length: int, minimum: int) -> None:
    if length < minimum:
        raise DataError(f"builtin:{name} needs length >= {minimum}, got {length}.")


def _name(task: str, length: int, n: int, seed: int, vocab: int | None = None,
          default_vocab: int | None = None) -> str:
    return (f"{task}(length={length}, n={n}" + (f", seed={seed}" if seed else "")
            + (f", vocab={vocab}" if vocab != default_vocab else "") + ")")


def with_target_noise(dataset: SequenceDataset, percent: int, seed: int) -> SequenceDataset:
    """``dataset`` with noisy targets, the inputs unchanged: for classification ``percent`` %
    of the sequences (drawn at random) get a class drawn uniformly at random (which may be
    the right one); for regression every target gets Gaussian noise whose standard deviation
    is ``percent`` % of the targets'. The noise has a random stream of its own, so the inputs
    are those of the noiseless task of the same seed."""
    if percent == 0:
        return dataset
    rng = np.random.default_rng([seed, 1])
    y = dataset.y.copy()
    if dataset.task is TaskKind.CLASSIFICATION:
        flipped = rng.random(len(y)) < percent / 100
        y[flipped] = rng.integers(0, len(dataset.class_names), size=int(flipped.sum()))
    else:
        y = (y + rng.normal(0.0, percent / 100 * float(y.std()), size=y.shape)).astype(y.dtype)
    return dataclasses.replace(dataset, y=y, name=f"{dataset.name[:-1]}, noise={percent}%)")


def adding_problem(length: int = 100, n: int = 2000, seed: int = 0) -> SequenceDataset:
    """The adding problem (Hochreiter & Schmidhuber 1997).

    Two channels: uniform values in [0, 1] and a marker channel with exactly two ones, one in
    each half of the sequence; the target is the sum of the two marked values.
    """
    _need("adding", length, 2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length)).astype(np.float32)
    markers = np.zeros((n, length), dtype=np.float32)
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=-1)  # (n, T, 2)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)  # (n,)
    return SequenceDataset(
        name=_name("adding", length, n, seed),
        task=TaskKind.REGRESSION,
        X=X,
        y=y,
        feature_names=("value", "marker"),
        target_name="sum_of_marked",
    )


COPY_ITEMS = 8  # symbols to memorise (copy memory, selective copying)
COPY_ALPHABET = 8


def copy_memory(length: int = 64, n: int = 2000, seed: int = 0,
                vocab: int = COPY_ALPHABET) -> SequenceDataset:
    """Copy memory (Arjovsky et al. 2016), single-query form.

    Steps 0..K-1 hold K=8 random symbols (an alphabet of ``vocab``, default 8), then blanks,
    and the last step holds the go marker and a query position j in 0..K-1; the target is the
    j-th symbol. The delay is ``length - K - 1`` steps. Channels: ``vocab`` symbols, blank, go,
    8 query positions (18 by default).
    """
    K, A = COPY_ITEMS, vocab
    _need("copy_memory", length, K + 2)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, A, size=(n, K))
    query = rng.integers(0, K, size=n)
    tokens = np.full((n, length), A)  # blank
    tokens[:, :K] = symbols
    tokens[:, -1] = A + 1  # go marker
    X = np.concatenate([_one_hot(tokens, A + 2),
                        np.zeros((n, length, K), dtype=np.float32)], axis=-1)
    X[np.arange(n), -1, A + 2 + query] = 1.0
    y = symbols[np.arange(n), query].astype(np.int64)
    return SequenceDataset(
        name=_name("copy_memory", length, n, seed, vocab, COPY_ALPHABET),
        task=TaskKind.CLASSIFICATION, X=X, y=y,
        feature_names=(*(f"symbol{i}" for i in range(A)), "blank", "go",
                       *(f"query{j}" for j in range(K))),
        class_names=tuple(f"symbol{i}" for i in range(A)), target_name="recalled_symbol")


def selective_copying(length: int = 64, n: int = 2000, seed: int = 0,
                      vocab: int = COPY_ALPHABET) -> SequenceDataset:
    """Selective copying (Gu & Dao 2023, the Mamba paper), single-query form.

    K=8 data symbols (an alphabet of ``vocab``, default 8) sit at random positions among blank
    noise steps; the last step holds the go marker and a query j in 0..K-1, and the target is
    the j-th data symbol in order of appearance. Unlike copy memory the positions vary, so the
    model must select by content. Channels: ``vocab`` symbols, blank, go, 8 query positions
    (18 by default).
    """
    K, A = COPY_ITEMS, vocab
    _need("selective_copying", length, K + 1)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, A, size=(n, K))
    positions = np.sort(rng.random((n, length - 1)).argsort(axis=1)[:, :K], axis=1)  # (n, K)
    query = rng.integers(0, K, size=n)
    tokens = np.full((n, length), A)
    tokens[np.arange(n)[:, None], positions] = symbols
    tokens[:, -1] = A + 1
    X = np.concatenate([_one_hot(tokens, A + 2),
                        np.zeros((n, length, K), dtype=np.float32)], axis=-1)
    X[np.arange(n), -1, A + 2 + query] = 1.0
    y = symbols[np.arange(n), query].astype(np.int64)
    return SequenceDataset(
        name=_name("selective_copying", length, n, seed, vocab, COPY_ALPHABET),
        task=TaskKind.CLASSIFICATION, X=X,
        y=y, feature_names=(*(f"symbol{i}" for i in range(A)), "blank", "go",
                            *(f"query{j}" for j in range(K))),
        class_names=tuple(f"symbol{i}" for i in range(A)), target_name="selected_symbol")


RECALL_VOCAB = 16  # keys, and values
RECALL_PAIRS = 8


def associative_recall(length: int = 64, n: int = 2000, seed: int = 0,
                       vocab: int = RECALL_VOCAB) -> SequenceDataset:
    """Associative recall (Ba et al. 2016; Zoology, Arora et al. 2023).

    Up to 8 key-value pairs (distinct keys of ``vocab``, values of ``vocab``; default 16) at
    random two-step slots among blank steps; the last step holds a query marker and one of
    the keys; the target is its value. Channels: keys, values, blank, query (34 by default).
    """
    _need("associative_recall", length, 3)
    Kv = Vv = vocab
    slots = (length - 1) // 2
    P = min(RECALL_PAIRS, slots, Kv)
    rng = np.random.default_rng(seed)
    keys = rng.random((n, Kv)).argsort(axis=1)[:, :P]  # distinct keys per sequence
    values = rng.integers(0, Vv, size=(n, P))
    slot = np.sort(rng.random((n, slots)).argsort(axis=1)[:, :P], axis=1)  # (n, P)
    asked = rng.integers(0, P, size=n)
    tokens = np.full((n, length), Kv + Vv)  # blank
    rows = np.arange(n)[:, None]
    tokens[rows, 2 * slot] = keys
    tokens[rows, 2 * slot + 1] = Kv + values
    tokens[:, -1] = keys[np.arange(n), asked]
    X = np.concatenate([_one_hot(tokens, Kv + Vv + 1),
                        np.zeros((n, length, 1), dtype=np.float32)], axis=-1)
    X[:, -1, -1] = 1.0  # query marker
    y = values[np.arange(n), asked].astype(np.int64)
    return SequenceDataset(
        name=_name("associative_recall", length, n, seed, vocab, RECALL_VOCAB),
        task=TaskKind.CLASSIFICATION, X=X,
        y=y, feature_names=(*(f"key{i}" for i in range(Kv)), *(f"value{i}" for i in range(Vv)),
                            "blank", "query"),
        class_names=tuple(f"value{i}" for i in range(Vv)), target_name="recalled_value")


INDUCTION_VOCAB = 16


def induction_heads(length: int = 64, n: int = 2000, seed: int = 0,
                    vocab: int = INDUCTION_VOCAB) -> SequenceDataset:
    """Induction heads (Olsson et al. 2022; H3, Fu et al. 2023).

    Random tokens (a vocabulary of ``vocab``, default 16) with a special token S placed once at
    a random position, followed by some token t; the last step is S again and the target is t
    (complete the pattern "S t ... S -> t"). Channels: the tokens, S (17 by default).
    """
    _need("induction_heads", length, 3)
    A = vocab
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, A, size=(n, length))
    where = rng.integers(0, length - 2, size=n)
    rows = np.arange(n)
    tokens[rows, where] = A
    tokens[:, -1] = A
    y = tokens[rows, where + 1].astype(np.int64)
    return SequenceDataset(
        name=_name("induction_heads", length, n, seed, vocab, INDUCTION_VOCAB),
        task=TaskKind.CLASSIFICATION,
        X=_one_hot(tokens, A + 1), y=y,
        feature_names=(*(f"token{i}" for i in range(A)), "special"),
        class_names=tuple(f"token{i}" for i in range(A)), target_name="next_token")


def parity(length: int = 32, n: int = 2000, seed: int = 0) -> SequenceDataset:
    """Parity: a random bit string (one channel of 0/1); the target is whether the number of
    ones is even or odd."""
    _need("parity", length, 1)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, length))
    return SequenceDataset(
        name=_name("parity", length, n, seed), task=TaskKind.CLASSIFICATION,
        X=bits[:, :, None].astype(np.float32), y=(bits.sum(axis=1) % 2).astype(np.int64),
        feature_names=("bit",), class_names=("even", "odd"), target_name="parity")


LISTOPS_OPS = ("MAX", "MIN", "MED", "SM")
LISTOPS_VOCAB = (*(str(d) for d in range(10)), *(f"[{op}" for op in LISTOPS_OPS), "]")
LISTOPS_MAX_DEPTH = 6
LISTOPS_MAX_ARGS = 5


def _listops_expr(rng: np.random.Generator, depth: int, budget: int) -> tuple[list[int], int]:
    """One random expression of at most ``budget`` tokens: (token ids, value 0..9)."""
    if budget < 4 or depth >= LISTOPS_MAX_DEPTH or (depth > 0 and rng.random() < 0.4):
        digit = int(rng.integers(0, 10))
        return [digit], digit
    op = int(rng.integers(0, len(LISTOPS_OPS)))
    remaining = budget - 2  # the opening "[OP" and the closing "]"
    n_args = int(rng.integers(2, min(LISTOPS_MAX_ARGS, remaining) + 1))
    tokens, args = [10 + op], []
    for k in range(n_args):
        reserve = n_args - k - 1  # at least one token for each argument still to come
        share = max(1, min(remaining - reserve, 2 * (remaining - reserve) // (n_args - k)))
        sub, value = _listops_expr(rng, depth + 1, share)
        tokens += sub
        args.append(value)
        remaining -= len(sub)
    tokens.append(len(LISTOPS_VOCAB) - 1)
    name = LISTOPS_OPS[op]
    if name == "MAX":
        result = max(args)
    elif name == "MIN":
        result = min(args)
    elif name == "MED":
        result = sorted(args)[(len(args) - 1) // 2]  # lower median, an integer
    else:
        result = sum(args) % 10
    return tokens, result


def listops(length: int = 64, n: int = 2000, seed: int = 0) -> SequenceDataset:
    """ListOps-style nested operations (Nangia & Bowman 2018; Long Range Arena).

    Expressions such as ``[MAX 2 9 [MIN 4 7 ] 0 ]`` over digits with MAX, MIN, MED (lower
    median) and SM (sum modulo 10), nested up to depth 6 with 2-5 arguments; the target is the
    value 0-9. Sequences are ragged (at most ``length`` tokens, padded at the end, see
    ``lengths``). Channels: one-hot over 10 digits, 4 operators and "]" (15).
    """
    _need("listops", length, 4)
    rng = np.random.default_rng(seed)
    tokens = np.zeros((n, length), dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    y = np.zeros(n, dtype=np.int64)
    for i in range(n):
        seq, value = _listops_expr(rng, 0, length)
        tokens[i, :len(seq)] = seq
        lengths[i] = len(seq)
        y[i] = value
    X = _one_hot(tokens, len(LISTOPS_VOCAB))
    X[np.arange(length)[None, :] >= lengths[:, None]] = 0.0  # padding is zero
    return SequenceDataset(
        name=_name("listops", length, n, seed), task=TaskKind.CLASSIFICATION, X=X, y=y,
        lengths=lengths, feature_names=LISTOPS_VOCAB,
        class_names=tuple(str(d) for d in range(10)), target_name="value")
