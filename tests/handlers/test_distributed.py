"""PaddedCaseMask on a real MONAI evaluator (one process, the sampler of rank 1 of 2): padding cases get
an empty prediction and ground truth, so MONAI's Dice and our PerClassMeanDice score them NaN and
leave them out of the mean."""

from __future__ import annotations

import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import MeanDice, from_engine
from monai.transforms import AsDiscreted

from monai_cwcd.data import DistributedEvalSampler
from monai_cwcd.handlers import PaddedCaseMask, PerClassMeanDice


class _LabelAsLogits(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0].long(), 3).movedim(-1, 1).float()


def _data(num):
    label = torch.zeros(1, 6, 6, 6)
    label[:, :3] = 1
    label[:, 3:, 3:] = 2
    return [{"image": torch.roll(label, k, dims=1), "label": label.clone()} for k in range(num)]


def _evaluator(data, sampler, handlers, decollate=True):
    post = AsDiscreted(keys=["pred", "label"], argmax=[True, False], to_onehot=3)
    return SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=DataLoader(Dataset(data), batch_size=2, sampler=sampler),
        network=_LabelAsLogits(), decollate=decollate, postprocessing=post if decollate else None,
        key_val_metric={"val_mean_dice": MeanDice(include_background=False, output_transform=from_engine(["pred", "label"]))},
        additional_metrics={"val_class_dice": PerClassMeanDice(["a", "b"], output_transform=from_engine(["pred", "label"]))},
        val_handlers=handlers,
    )


def test_padding_case_contributes_nothing():
    data = _data(1)
    sampler = DistributedEvalSampler(data, num_replicas=2, rank=1)  # rank 1 of 2, one case: padding only
    mask = PaddedCaseMask()
    ev = _evaluator(data, sampler, [mask])
    ev.run()
    assert mask.masked == 1
    for name in ("val_mean_dice", "val_class_dice"):  # NaN rows: left out of MONAI's metric reduction
        details = ev.state.metric_details[name]
        assert details.shape == (1, 2) and torch.isnan(details).all()
    out, batch = ev.state.output[0], ev.state.batch[0]  # the output is emptied, the batch kept
    assert torch.count_nonzero(out["label"]) == torch.count_nonzero(out["pred"]) == 0
    assert torch.count_nonzero(batch["label"]) > 0
    # without the mask the padding case (a repeat of case 0) is scored
    ev = _evaluator(data, DistributedEvalSampler(data, num_replicas=2, rank=1), [])
    ev.run()
    assert ev.state.metrics["val_mean_dice"] == pytest.approx(1.0)


def test_only_the_padding_positions_are_masked_across_batches():
    data = _data(3)
    sampler = DistributedEvalSampler(data, num_replicas=1, rank=0)  # no padding: mask is a no-op
    mask = PaddedCaseMask()
    ev = _evaluator(data, sampler, [mask])
    ev.run()
    ref = ev.state.metric_details["val_mean_dice"]
    assert mask.masked == 0 and not torch.isnan(ref).any()

    class _Padded(DistributedEvalSampler):  # 3 real cases then 1 padding case, over 2 batches of 2
        def __iter__(self):
            return iter([0, 1, 2, 0])

        def __len__(self):
            return 4

    padded = _Padded(data, num_replicas=1, rank=0)
    padded.num_cases, padded.num_padding = 3, 1
    for decollate in (True, False):
        mask = PaddedCaseMask(sampler=padded)
        handlers = [mask]
        ev = _evaluator(data, padded, handlers, decollate=decollate)
        if not decollate:  # batch-first output: one-hot it by hand for the metrics
            from monai.engines.utils import IterationEvents

            @ev.on(IterationEvents.FORWARD_COMPLETED)
            def _onehot(engine):
                lab = engine.state.output["label"]
                engine.state.output["label"] = torch.nn.functional.one_hot(lab[:, 0].long(), 3).movedim(-1, 1).float()

        ev.run()
        details = ev.state.metric_details["val_mean_dice"]
        assert mask.masked == 1 and len(details) == 4
        torch.testing.assert_close(details[:3], ref)
        assert torch.isnan(details[3]).all()
        assert ev.state.metrics["val_mean_dice"] == pytest.approx(ref.nanmean().item())


def test_missing_key_is_named():
    data = _data(1)
    ev = _evaluator(data, DistributedEvalSampler(data, num_replicas=2, rank=1), [PaddedCaseMask(keys="seg")])
    with pytest.raises(KeyError, match="'seg' not in the evaluator output"):
        ev.run()
