"""`convert`: an original research checkpoint (.pth) to a transformers-format folder.

The .pth holds weights only: the class is chosen from them (a decoder means pretraining, a
head means classification, otherwise the bare encoder) and the sizes the weights do not fix
(frames, image size, heads) come from flags, with the published models' values as defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import checkpoint
from ..config import VideoMAEConfig
from ..constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from ..processing import VideoMAEImageProcessor



def choose_class(state: dict) -> type:  # noqa: ANN001 - internal-layout state dict
    from ..modeling import VideoMAEForPreTraining, VideoMAEForVideoClassification, VideoMAEModel

    if "encoder_to_decoder.weight" in state:
        return VideoMAEForPreTraining
    if "classifier.weight" in state:
        return VideoMAEForVideoClassification
    return VideoMAEModel


def convert(args) -> int:  # noqa: ANN001
    source = Path(args.checkpoint)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such checkpoint file")
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ValueError(f"{out}: folder is not empty (pass --force to write into it)")
    state, layout = checkpoint.to_internal(checkpoint.read_weights(source))
    cls = choose_class(state)
    overrides: dict = {"num_frames": args.num_frames, "image_size": args.image_size}
    if args.num_attention_heads is not None:
        overrides["num_attention_heads"] = args.num_attention_heads
    if args.labels:
        names = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
        overrides["id2label"] = dict(enumerate(names))
        overrides["label2id"] = {name: i for i, name in enumerate(names)}
        overrides["num_labels"] = len(names)
    fields = checkpoint.infer_config_fields(state) if layout in ("original", "internal") else {}
    if args.labels and "num_labels" in fields and fields["num_labels"] != overrides["num_labels"]:
        raise ValueError(f"{args.labels}: {overrides['num_labels']} class names, but the checkpoint's head has "
                         f"{fields['num_labels']} outputs")
    if fields:
        config = VideoMAEConfig.from_dict({**fields, **overrides})
        model = cls.from_pretrained(source, config=config)
    else:  # a transformers-layout file given alone: its config.json must sit beside it
        model = cls.from_pretrained(source, **overrides)
    model.save_pretrained(out)
    height, width = model.config.image_hw
    # The original code normalises with ImageNet statistics and evaluates at short side = crop.
    processor = VideoMAEImageProcessor(size={"shortest_edge": min(height, width)},
                                       crop_size={"height": height, "width": width},
                                       image_mean=list(IMAGENET_DEFAULT_MEAN), image_std=list(IMAGENET_DEFAULT_STD))
    processor.save_pretrained(out)
    c = model.config
    print(f"{source} ({layout} layout) -> {out}: {cls.__name__}, {model.num_parameters() / 1e6:.1f}M parameters, "
          f"hidden {c.hidden_size} x {c.num_hidden_layers} layers, {c.num_frames} frames of {height}x{width}"
          + (f", {c.num_labels} labels" if cls.__name__ == "VideoMAEForVideoClassification" else ""),
          file=sys.stderr)
    return 0


def add_arguments(parser) -> None:  # noqa: ANN001
    parser.add_argument("checkpoint", metavar="CHECKPOINT.pth", help="original VideoMAE checkpoint (pretraining "
                                                                     "or fine-tuned)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write config.json, model.safetensors and "
                                                           "preprocessor_config.json to")
    parser.add_argument("--num-frames", type=int, default=16, metavar="N",
                        help="frames per clip the model was trained with (default: 16)")
    parser.add_argument("--image-size", type=int, default=224, metavar="N", help="crop side (default: 224)")
    parser.add_argument("--num-attention-heads", type=int, default=None, metavar="N",
                        help="encoder heads (default: the published size's: 6 for 384-d, 12 for 768, 16 for 1024 "
                             "and 1280)")
    parser.add_argument("--labels", metavar="FILE", help="class names, one a line (line i = label i), stored "
                                                          "as id2label")
    parser.add_argument("--force", action="store_true", help="write into a folder that is not empty")


__all__ = ["convert", "add_arguments", "choose_class"]
