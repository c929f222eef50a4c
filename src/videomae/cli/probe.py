"""`videomae probe`: a frozen encoder's features, scored by a linear classifier and by k-NN.

    videomae probe --model runs/pretrain/model --train-data train.txt --eval-data val.txt

Prints one JSON object: linear top-1 / top-5 and k-NN top-1 on the eval set (see
`videomae.probe`). Only parses and prints; the work is `videomae.probe.run_probe`.
"""

from __future__ import annotations

import json

from ..devices import default_num_workers
from ..probe import DEFAULT_K, run_probe
from .inference import _positive, add_model_arguments


def add_arguments(parser) -> None:  # noqa: ANN001
    add_model_arguments(parser, batch=False)
    parser.add_argument("--train-data", required=True, metavar="LIST_OR_FOLDER",
                        help="`path label` list or class folders: trains the classifier, and is the k-NN's memory")
    parser.add_argument("--eval-data", required=True, metavar="LIST_OR_FOLDER", help="the videos scored")
    parser.add_argument("--k", type=_positive, default=DEFAULT_K,
                        help=f"neighbours of k-NN, fewer when the train set is smaller (default: {DEFAULT_K})")
    parser.add_argument("--num-clips", type=_positive, default=2, metavar="N",
                        help="clips per video; the feature is their mean (default: 2)")
    parser.add_argument("--epochs", type=_positive, default=100,
                        help="full-batch AdamW steps of the linear classifier (default: 100)")
    parser.add_argument("--lr", type=float, default=1e-2, help="of the linear classifier (default: 0.01)")
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="of the linear classifier (default: 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="of the classifier's initial weights (default: 0)")
    parser.add_argument("--batch-size", type=_positive, default=8, metavar="N", help="clips per forward pass "
                                                                                     "(default: 8)")
    parser.add_argument("--num-workers", "--workers", dest="num_workers", type=int, default=default_num_workers(),
                        metavar="N", help="processes decoding videos (default: the CPUs this process may use, but one)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar (default: a bar on stderr when it is a terminal)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="precision of the features (default: auto = bfloat16 on CUDA and on CPUs with bf16 "
                             "matrix units, float32 elsewhere)")


def run(args) -> int:  # noqa: ANN001
    result = run_probe(args.model, args.train_data, args.eval_data, k=args.k, epochs=args.epochs, lr=args.lr,
                       weight_decay=args.weight_decay, seed=args.seed, num_clips=args.num_clips,
                       sampling_rate=args.sampling_rate, batch_size=args.batch_size, num_workers=args.num_workers,
                       device=args.device, offline=args.offline, progress=args.progress, dtype=args.dtype)
    print(json.dumps(result.as_dict()))
    return 0


__all__ = ["add_arguments", "run"]
