"""A distributed evaluation with real MONAI components, run by ``test_distributed.py`` under torchrun:
``python -m torch.distributed.run --nproc_per_node=R _ddp_eval.py OUT_DIR NUM_CASES [mask]``.

Each rank writes ``OUT_DIR/rank<r>.json`` with its evaluator metrics and gathered per-case Dice. The
cases come from :func:`cases`, so the test can score them in one process too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import MeanDice, from_engine
from monai.transforms import AsDiscreted

from monai_cwcd.data import DistributedEvalSampler
from monai_cwcd.handlers import AtomicCheckpointSaver, PaddedCaseMask, PerClassMeanDice

NUM_CLASSES = 3


class LabelAsLogits(torch.nn.Module):
    """'Predicts' the class map stored in the image: one-hot logits of ``image`` (B, 1, *spatial)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(x[:, 0].long(), NUM_CLASSES).movedim(-1, 1)
        return onehot.float() * self.scale


def cases(num: int) -> list[dict]:
    """Case k: label with classes 1 and 2 in two blocks; prediction right for k == 0 and shifted for
    k > 0, so the per-case Dice differ (case 0 scores 1.0)."""
    out = []
    for k in range(num):
        label = torch.zeros(1, 8, 8, 8)
        label[:, 1:5, 1:5, 1:5] = 1
        label[:, 5:8, 4:8, 2:7] = 2
        pred = torch.roll(label, shifts=2 * k, dims=1)
        out.append({"image": pred, "label": label})
    return out


def evaluator(data: list[dict], loader_kwargs: dict, handlers: list, out_dir: str) -> SupervisedEvaluator:
    net = LabelAsLogits()
    handlers = handlers + [AtomicCheckpointSaver(out_dir, {"model": net}, save_key_metric=True)]
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=1, **loader_kwargs),
        network=net,
        postprocessing=AsDiscreted(keys=["pred", "label"], argmax=[True, False], to_onehot=NUM_CLASSES),
        key_val_metric={"val_mean_dice": MeanDice(include_background=False,
                                                  output_transform=from_engine(["pred", "label"]))},
        additional_metrics={"val_class_dice": PerClassMeanDice(["one", "two"],
                                                               output_transform=from_engine(["pred", "label"]))},
        val_handlers=handlers,
    )


def main(out_dir: str, num_cases: int, mask: bool) -> None:
    dist.init_process_group("gloo")
    data = cases(num_cases)
    sampler = DistributedEvalSampler(data)
    ev = evaluator(data, {"sampler": sampler}, [PaddedCaseMask()] if mask else [], out_dir)
    ev.run()
    details = {k: v.tolist() for k, v in ev.state.metric_details.items()}
    result = {"metrics": ev.state.metrics, "details": details, "num_cases": sampler.num_cases,
              "num_padding": sampler.num_padding}
    Path(out_dir, f"rank{dist.get_rank()}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "mask")
