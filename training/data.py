"""Token shards -> packed training sequences, mixed from named corpora in proportion.

Reads the corpus stage's `tokens/<corpus>/<split>/*.ds` (datatrove's format: little-endian token
ids, EOS after every document) through `np.memmap`, so memory does not grow with the corpus.
Sequences are packed across document boundaries: window i is tokens [i*L, i*L + L + 1).
(datatrove's DatatroveFileDataset reads through fsspec file handles, optimised for sequential reads;
a seeded shuffle over windows wants random access, which a memory map gives for free.)
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch


class DataError(RuntimeError):
    """Missing or unusable token shards, said in words a user can act on."""


class TokenShards:
    """All `*.ds` files of one `tokens/<corpus>/<split>/` folder as one memory-mapped token stream."""

    def __init__(self, folder: Path):
        self.folder = folder
        files = sorted(folder.glob("*.ds"))
        if not files:
            step = "make select" if "select" in folder.parts else "make corpus"
            raise DataError(f"{folder}: no token shards (*.ds) here; run `{step}` for this recipe first")
        header = Path(f"{files[0]}.metadata").read_text().splitlines()[0]
        self.tokenizer_path, token_bytes = header.rsplit("|", 1)
        dtype = {"2": np.uint16, "4": np.uint32}[token_bytes.strip()]
        self.arrays = [np.memmap(f, dtype=dtype, mode="r") for f in files if f.stat().st_size]
        self.offsets = np.cumsum([0] + [len(a) for a in self.arrays])
        if self.offsets[-1] == 0:
            raise DataError(f"{folder}: the token shards are empty (every document was filtered out?)")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def digest(self) -> str:
        """Tells corpora apart cheaply: the token count and each shard's first and last 64 KiB, so a
        re-chosen selection of the same size is other data too."""
        digest = hashlib.sha256(str(len(self)).encode())
        for array in self.arrays:
            raw = array.view(np.uint8)
            digest.update(raw[:65536].tobytes() + raw[-65536:].tobytes())
        return digest.hexdigest()[:16]

    def tokens(self, start: int, stop: int) -> np.ndarray:
        pieces = []
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        for i in range(first, len(self.arrays)):
            lo, hi = max(start, self.offsets[i]), min(stop, self.offsets[i + 1])
            if lo >= hi:
                break
            pieces.append(self.arrays[i][lo - self.offsets[i] : hi - self.offsets[i]])
        return np.concatenate(pieces)


class PackedWindows:
    """Fixed-length windows of `seq_len + 1` tokens (inputs and shifted targets), packed across
    documents; the order is a seeded permutation, new every epoch."""

    def __init__(self, shards: TokenShards, seq_len: int, seed: int):
        self.shards, self.seq_len, self.seed = shards, seq_len, seed
        self.count = (len(shards) - 1) // seq_len
        if self.count == 0:
            raise DataError(
                f"{shards.folder}: {len(shards)} tokens is less than one sequence of {seq_len + 1}"
            )

    def window(self, i: int) -> np.ndarray:
        return self.shards.tokens(i * self.seq_len, i * self.seq_len + self.seq_len + 1)

    def order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.count)


class CorpusCursor:
    """Where one corpus's stream stands (epoch, position): the data part of a checkpoint."""

    def __init__(self, windows: PackedWindows):
        self.windows = windows
        self.epoch = self.position = 0
        self._order = windows.order(0)

    def take(self, n: int) -> list[int]:
        ids = []
        while len(ids) < n:
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self.windows.order(self.epoch)
            step = min(n - len(ids), len(self._order) - self.position)
            ids += self._order[self.position : self.position + step].tolist()
            self.position += step
        return ids

    @property
    def taken(self) -> int:
        """Windows read so far, over all epochs."""
        return self.epoch * len(self._order) + self.position

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self.windows.order(self.epoch)


def blend(shares: dict[str, float], taken: dict[str, int], n: int) -> dict[str, int]:
    """How many of the next `n` sequences each corpus gives, after `taken`: each goes to the corpus
    furthest below its share (Megatron's blended datasets), so the shares hold within one sequence at
    every point of the stream, whatever the batch size."""
    counts = dict.fromkeys(shares, 0)
    total = sum(taken.values())
    for k in range(1, n + 1):
        counts[max(shares, key=lambda c: shares[c] * (total + k) - taken[c] - counts[c])] += 1
    return counts


class ReplayMixture:
    """Global batches mixed from named corpora in proportion over the stage (e.g. 70% domain, 30%
    replay). A share that is a whole number of a global batch's sequences gives the same counts every
    step; another (0.7 of 16) alternates between the two nearest (11 and 12), so the stage trains the
    share asked for instead of a rounded one.

    Every rank computes the whole global batch plan from the cursors and the seed, then takes its
    own slice, so the plan (and the checkpointed cursors) do not depend on the rank.
    """

    def __init__(
        self, windows: dict[str, PackedWindows], weights: dict[str, float], global_batch: int, seed: int
    ):
        self.windows = windows
        self.shares = {name: w / sum(weights.values()) for name, w in weights.items()}
        self.size = global_batch
        self.cursors = {name: CorpusCursor(windows[name]) for name in self.shares}
        self.seed = seed

    def global_batch(self, step: int) -> list[tuple[str, int]]:
        counts = blend(self.shares, {name: c.taken for name, c in self.cursors.items()}, self.size)
        slots = [(name, i) for name, n in counts.items() for i in self.cursors[name].take(n)]
        perm = np.random.default_rng([self.seed, step, 1]).permutation(len(slots))
        return [slots[j] for j in perm]

    def micro_batches(
        self, step: int, rank: int, world: int, micro: int
    ) -> list[tuple[torch.Tensor, list[str]]]:
        plan = self.global_batch(step)
        share = len(plan) // world
        mine = plan[rank * share : (rank + 1) * share]
        out = []
        for k in range(0, len(mine), micro):
            chunk = mine[k : k + micro]
            tokens = np.stack([self.windows[name].window(i) for name, i in chunk]).astype(np.int64)
            out.append((torch.from_numpy(tokens), [name for name, _ in chunk]))
        return out

    def state_dict(self) -> dict:
        return {name: c.state_dict() for name, c in self.cursors.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, cursor_state in state.items():
            self.cursors[name].load_state_dict(cursor_state)


def corpus_seed(seed: int, name: str) -> int:
    return seed * 1_000_003 + zlib.crc32(name.encode())


def validation_batches(
    windows: PackedWindows, batches: int, micro: int, rank: int, world: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's (tokens, weights) micro-batches of the first `batches * micro` windows of a
    validation split, in file order: the same windows every evaluation, whatever the world size.

    Every rank gets the same number of micro-batches, the short ones padded with weight-0 windows:
    under FSDP each forward is a collective, so a rank with one batch fewer would leave the others
    waiting. The loss is a weighted sum over all ranks, so it equals the single-process loss.
    """
    n = min(windows.count, batches * micro)
    ids = list(range(n))[rank::world]
    padded = -(-n // (world * micro)) * micro  # the windows every rank evaluates
    weights = torch.tensor([1.0] * len(ids) + [0.0] * (padded - len(ids)), dtype=torch.float64)
    ids += [0] * (padded - len(ids))
    return [
        (
            torch.from_numpy(np.stack([windows.window(i) for i in ids[k : k + micro]]).astype(np.int64)),
            weights[k : k + micro],
        )
        for k in range(0, padded, micro)
    ]
