"""Distributed sampling for validation and evaluation: every case exactly once, any case count."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from monai.data import DistributedSampler
from torch.utils.data import Dataset

__all__ = ["DistributedEvalSampler"]


class DistributedEvalSampler(DistributedSampler):
    """Shard a validation or evaluation dataset over the ranks of a distributed run so that every case
    is evaluated exactly once, for any number of cases >= 1 and any number of ranks.

    Rank ``r`` of ``R`` gets the cases ``r, r + R, r + 2R, ...`` (of the shuffled order when
    ``shuffle=True``), as MONAI's ``DistributedSampler(even_divisible=False)``: no case is repeated,
    so the gathered metric is that of the dataset. Unlike MONAI's sampler it also accepts fewer
    cases than ranks: a rank left without a case gets one *padding* case (case ``r mod N``), because
    every rank must run the validation epoch to take part in the metric all-gather at its end (an
    empty rank would skip the epoch and the others would wait forever). :class:`PaddedCaseMask
    <monai_cwcd.handlers.PaddedCaseMask>` on the evaluator empties the prediction and the ground
    truth of padding cases, so MONAI's Dice (``ignore_empty=True``), Hausdorff and surface-distance
    metrics and our ``PerClassMeanDice`` score them NaN, which their mean leaves out: a padding case
    contributes nothing to the reduced metric.

    Padding cases always come last on their rank; ``num_cases`` and ``num_padding`` tell how many
    real and padding cases this rank iterates (``len(sampler) == num_cases + num_padding``).

    Use it for validation and evaluation only: training needs the same number of iterations on
    every rank (MONAI's ``DistributedSampler(even_divisible=True)``), because DDP all-reduces the
    gradients of every step.

    Example:
        >>> sampler = DistributedEvalSampler(val_ds)  # rank and world size from torch.distributed
        >>> loader = DataLoader(val_ds, batch_size=1, sampler=sampler)

    Args:
        dataset: the dataset to shard (``len(dataset) >= 1``).
        num_replicas: number of ranks; None reads the world size of the default process group.
            Defaults to None.
        rank: this process's rank; None reads it from the default process group. Defaults to None.
        shuffle: shuffle the case order (identically on all ranks, seeded by ``seed`` and the epoch
            set with ``set_epoch``). Defaults to False.
        seed: seed of the shuffle. Defaults to 0.

    Raises:
        ValueError: when the dataset is empty, or ``rank`` is not in ``[0, num_replicas)``.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        num = len(dataset)  # type: ignore[arg-type]
        if num < 1:
            raise ValueError(
                f"{type(self).__name__} got an empty dataset ({type(dataset).__name__} of length 0): "
                "there is no case to evaluate; check the validation datalist."
            )
        super().__init__(dataset=dataset, even_divisible=True, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed)
        self.num_cases = len(range(self.rank, num, self.num_replicas))
        self.num_padding = 0 if self.num_cases else 1
        self.num_samples = self.num_cases + self.num_padding
        self.total_size = max(num, self.num_replicas)

    def __iter__(self) -> Iterator[int]:
        num = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(num, generator=g).tolist()
        else:
            order = list(range(num))
        mine = order[self.rank : num : self.num_replicas]
        if self.num_padding:
            mine.append(order[self.rank % num])
        return iter(mine)

    def __len__(self) -> int:
        return self.num_samples
