"""Training: self-supervised pretraining, fine-tuning and multi-view evaluation, on one
process or many (torchrun), resumable.

    from videomae.train import pretrain, finetune, evaluate
    pretrain(data="videos/", output_dir="runs/pre", model="base", epochs=800, batch_size=256)
    finetune(data="train.txt", eval_data="val.txt", init_from="runs/pre/model", output_dir="runs/ft")
    evaluate(model="runs/ft/model", data="test.txt")
"""

from .engine import TrainingDiverged
from .entrypoints import evaluate, finetune, pretrain
from .failures import TooManyFailedVideos
from .optim import CosineSchedule, param_groups
from .options import EvalOptions, FinetuneOptions, PretrainOptions

__all__ = ["pretrain", "finetune", "evaluate", "PretrainOptions", "FinetuneOptions", "EvalOptions",
           "TrainingDiverged", "TooManyFailedVideos", "CosineSchedule", "param_groups"]
