#!/usr/bin/env python3
"""Trains the recipe `ssf train` runs in tools/reproduce.sh with PyTorch and timm, so that
docs/RESULTS.md can set our top-1 and training time beside PyTorch's for the same data, model,
method, schedule and augmentation.

    /root/venv-torch/bin/python tools/torch_same_recipe.py --data imagefolder:DIR --method ssf --lr 0.01 \\
        --config configs/repro-lite0-96px.yaml --weights ~/.cache/ssf/efficientnet-lite0-57934424.pth \\
        --head-init zeros --bn auto --threads 2 --output RUN_DIR
    ... --data fashion-mnist:/usr/share/datasets/fashion-mnist --train-limit 5000 --eval-limit 3000 ...

Pinned versions (checked at start; --any-versions records whatever is installed instead):
torch 2.5.1, timm 1.0.11, torchvision 0.20.1 (with numpy, pillow, PyYAML). Create the environment
with

    python3 -m venv /root/venv-torch
    /root/venv-torch/bin/pip install torch==2.5.1 torchvision==0.20.1 timm==1.0.11 pyyaml

The recipe, as the Swift tool runs it:
- Configuration: the Swift tool's YAML keys and its defaults for keys left out; flags override the
  file. Keys of features outside this recipe (mixup, cutmix, RandAugment, random erasing, EMA,
  clipping, accumulation, direct resize, SGD) are refused unless at their "off" values.
- Model: timm `tf_efficientnet_lite0` with `num_classes` = the dataset's classes, loaded from the
  efficientnet_pytorch-named checkpoint (renamed to timm's names here; its 1000-class `_fc` is
  dropped, every other timm tensor must come from the checkpoint). CPU only.
- Head (`--head-init`): `zeros`, `trunc-normal` (timm's trunc_normal_(std=.02), bias 0) or
  `torch-default` (nn.Linear's own initialisation).
- Methods: `linear` (classifier), `bias` (every `*.bias`, batch-norm biases included, and the
  classifier), `ssf` (a scale γ ~ N(1, 0.02²) and shift β ~ N(0, 0.02²) per channel after every
  batch norm, before its activation, and the classifier), `full` (everything).
- Batch norm (`--bn`, else the config's `bn`): `train` (batch statistics, running statistics
  updated with momentum 0.1), `frozen` (evaluation mode throughout), `auto` (train for full, frozen
  otherwise). Stochastic depth (`drop_path`, default 0) as timm applies it.
- AdamW (β 0.9/0.999, ε 1e-8), weight decay on tensors of rank ≥ 2 only; timm's CosineLRScheduler
  stepped after every update (t_in_epochs=False), warmup from warmup_lr, floor min_lr, cooldown
  epochs at min_lr; cross entropy with label smoothing; the last partial batch dropped; a seeded
  shuffle per epoch.
- Train transform: RandomResizedCrop(image_size, scale=(scale_min, 1), ratio=(3/4, 4/3), bicubic),
  horizontal flip (p = hflip) — or, with `augment: none` / `flip`, timm's no-aug geometry (the shorter
  side resized to image_size, bicubic, then a center crop), with the flip only for `flip` — normalisation with mean = std = 0.5 (the tf_ model's Inception
  constants). Eval: shorter side resized to ⌊image_size / 0.875⌋ (bicubic), center crop.
- Data: `imagefolder:DIR` (DIR/train/<class>/*.jpg|jpeg|png and DIR/<eval split>/..., classes and
  files in sorted order) or `fashion-mnist:DIR` / `mnist:DIR` (gzip'd or plain IDX files; grayscale
  replicated to RGB). `--train-limit N` / `--eval-limit N` keep samples i·count/N for i < N.

Writes RUN_DIR/metrics.jsonl (one line per epoch, the Swift tool's keys) and RUN_DIR/summary.json.
The training time counts training steps with their data loading and leaves out evaluation.
"""
import argparse
import functools
import gzip
import json
import math
import os
import resource
import subprocess
import sys
import time

PINNED = {"torch": "2.5.1", "timm": "1.0.11", "torchvision": "0.20.1"}
MODEL = "tf_efficientnet_lite0"
CROP_FRACTION = 0.875  # timm's crop_pct for tf_efficientnet_lite0
MEAN = STD = (0.5, 0.5, 0.5)  # Inception normalisation of the tf_ models
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}

# Defaults of the Swift tool's TrainingConfig (outside a preset), for keys a config file leaves out.
DEFAULTS = {
    "epochs": 100, "cooldown_epochs": 0, "warmup_epochs": 0, "batch_size": 128, "lr": 1e-3,
    "warmup_lr": 1e-7, "min_lr": 1e-8, "weight_decay": 0.05, "image_size": 224, "seed": 42,
    "smoothing": 0.1, "scale_min": 0.08, "hflip": 0.5, "train_split": "train", "eval_split": None,
    "train_limit": None, "eval_limit": None, "bn": "auto", "head_init": None, "drop_path": 0.0, "augment": "full",
}
# Keys this script accepts but does not use: the Swift loader's worker count and bad-image policy,
# whether the Swift tool caches a frozen backbone's features (here every step runs the whole model),
# SGD settings (the optimiser is AdamW), and what the command line gives (method, data, weights;
# `model` must name tf_efficientnet_lite0).
IGNORED = {"workers", "bad_images", "cache_features", "momentum", "nesterov", "mixup_prob", "mixup_switch_prob", "model", "method", "data", "weights"}
# Features of the Swift tool this recipe does not use: allowed only at their "off" values.
OFF = {"mixup": 0, "cutmix": 0, "aa": None, "reprob": 0, "ema_decay": None, "clip_grad": None,
       "grad_accum": 1, "direct_resize": False, "opt": "adamw"}


def fail(message):
    print(f"torch_same_recipe.py: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="imagefolder:DIR, fashion-mnist:DIR or mnist:DIR")
    ap.add_argument("--method", required=True, choices=["linear", "bias", "ssf", "full"])
    ap.add_argument("--config", help="YAML file of the Swift tool's configuration keys")
    ap.add_argument("--weights", required=True, help="efficientnet-lite0-57934424.pth (efficientnet_pytorch names)")
    ap.add_argument("--head-init", required=True, choices=["zeros", "trunc-normal", "torch-default"],
                    help="initialisation of the new head (overrides a head_init key in the config)")
    ap.add_argument("--bn", choices=["auto", "train", "frozen"], help="batch norm while training (default: the config's bn, else auto)")
    ap.add_argument("--output", required=True, help="run directory")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (0: load in the training process)")
    ap.add_argument("--any-versions", action="store_true", help="run with other torch/timm/torchvision versions than the pinned ones")
    # Overrides of configuration keys.
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--warmup-epochs", type=int)
    ap.add_argument("--cooldown-epochs", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--train-limit", type=int)
    ap.add_argument("--eval-limit", type=int)
    ap.add_argument("--drop-path", type=float, help="stochastic-depth rate of the last block, rising linearly from 0 (default 0)")
    return ap.parse_args()


def resolve_config(args):
    import yaml

    given = {}
    if args.config:
        with open(args.config) as f:
            given = yaml.safe_load(f) or {}
        if not isinstance(given, dict):
            fail(f"{args.config}: expected a mapping of configuration keys")
    known = set(DEFAULTS) | IGNORED | set(OFF)
    unknown = sorted(k for k in given if k not in known)
    if unknown:
        fail(f"{args.config}: unknown configuration key(s) {', '.join(unknown)}")
    for key, off in OFF.items():
        value = given.get(key, off)
        if value != off:
            fail(f"{args.config}: {key}: {value!r} is not part of this recipe (only {off!r} is supported)")
    if given.get("model", MODEL) != MODEL:
        fail(f"{args.config}: model {given['model']!r}; this script trains {MODEL}")
    config = {k: given.get(k, v) for k, v in DEFAULTS.items()}
    for key in ["lr", "seed", "epochs", "warmup_epochs", "cooldown_epochs", "batch_size", "image_size", "train_limit", "eval_limit",
                "bn", "head_init", "drop_path"]:
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    if config["epochs"] <= 0 or config["batch_size"] <= 0 or config["warmup_epochs"] < 0 or config["cooldown_epochs"] < 0:
        fail("epochs and batch_size must be positive, warmup and cooldown epochs not negative")
    if config["warmup_epochs"] and config["warmup_epochs"] >= config["epochs"]:
        fail(f"warmup_epochs ({config['warmup_epochs']}) must be fewer than epochs ({config['epochs']}); pass --warmup-epochs with a smaller value")
    if config["augment"] not in ("full", "flip", "none"):
        fail(f"augment must be full, flip or none, not {config['augment']!r}")
    if config["bn"] not in ("auto", "train", "frozen"):
        fail(f"bn must be auto, train or frozen, not {config['bn']!r}")
    if not 0 <= float(config["drop_path"] or 0) < 1:
        fail("drop_path must be in [0, 1)")
    return config


def check_versions(allow_other):
    import timm
    import torch
    import torchvision

    found = {"torch": torch.__version__.split("+")[0], "timm": timm.__version__, "torchvision": torchvision.__version__.split("+")[0]}
    wrong = [f"{name} {found[name]} (pinned {want})" for name, want in PINNED.items() if found[name] != want]
    if wrong and not allow_other:
        fail("version mismatch: " + ", ".join(wrong) + "; install the pinned versions or pass --any-versions")
    return found


# MARK: Data


class ImageFolder:
    """torchvision-style ImageFolder with the Swift reader's ordering: sorted class folders, sorted
    .jpg/.jpeg/.png files inside each, hidden entries skipped."""

    def __init__(self, root):
        def listing(path):
            return sorted(n for n in os.listdir(path) if not n.startswith("."))

        if not os.path.isdir(root):
            fail(f"{root}: no such folder")
        self.classes = [c for c in listing(root) if os.path.isdir(os.path.join(root, c))]
        if not self.classes:
            fail(f"{root}: has no class sub-folders")
        self.samples = []
        for label, name in enumerate(self.classes):
            folder = os.path.join(root, name)
            for file in listing(folder):
                if os.path.splitext(file)[1].lower() in IMAGE_EXTENSIONS:
                    self.samples.append((os.path.join(folder, file), label))

    def __len__(self):
        return len(self.samples)

    def image(self, index):
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as img:
            return img.convert("RGB"), label


class IDXDataset:
    """MNIST or Fashion-MNIST from IDX files (`train-…` / `t10k-…`, gzip'd or not); each
    grayscale image is replicated to three channels."""

    def __init__(self, root, split, fashion):
        import numpy as np

        if split not in ("train", "test"):
            fail(f"{root}: MNIST has splits train and test, not {split!r}")
        prefix = "train" if split == "train" else "t10k"

        def load(name, rank):
            for candidate in (name + ".gz", name):
                path = os.path.join(root, candidate)
                if os.path.exists(path):
                    data = open(path, "rb").read()
                    if data[:2] == b"\x1f\x8b":
                        data = gzip.decompress(data)
                    break
            else:
                fail(f"{os.path.join(root, name)}: missing (also looked for .gz)")
            if len(data) < 4 + 4 * rank or data[:3] != b"\x00\x00\x08" or data[3] != rank:
                fail(f"{path}: is not an unsigned-byte IDX file of rank {rank}")
            dims = [int.from_bytes(data[4 + 4 * d: 8 + 4 * d], "big") for d in range(rank)]
            values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
            if values.size != math.prod(dims):
                fail(f"{path}: holds {values.size} bytes of data for dimensions {dims}")
            return values.reshape(dims)

        self.images = load(f"{prefix}-images-idx3-ubyte", 3)
        self.labels = load(f"{prefix}-labels-idx1-ubyte", 1).astype(int)
        if len(self.images) != len(self.labels):
            fail(f"{root}: {len(self.labels)} labels for {len(self.images)} images")
        if self.labels.max() > 9:
            fail(f"{root}: label {self.labels.max()} is not a digit class")
        self.classes = FASHION_CLASSES if fashion else [str(i) for i in range(10)]

    def __len__(self):
        return len(self.labels)

    def image(self, index):
        from PIL import Image

        return Image.fromarray(self.images[index], mode="L").convert("RGB"), int(self.labels[index])


def open_split(spec, split):
    kind, _, root = spec.partition(":")
    if not root:
        fail(f"--data {spec!r}: expected imagefolder:DIR, fashion-mnist:DIR or mnist:DIR")
    root = os.path.expanduser(root)
    if kind == "imagefolder":
        return ImageFolder(os.path.join(root, split))
    if kind in ("fashion-mnist", "mnist"):
        return IDXDataset(root, split, fashion=kind == "fashion-mnist")
    fail(f"--data {spec!r}: this script reads imagefolder, fashion-mnist and mnist data")


def has_split(spec, split):
    kind, _, root = spec.partition(":")
    return kind == "imagefolder" and os.path.isdir(os.path.join(os.path.expanduser(root), split))


class TransformedSubset:
    """A torch Dataset over `base` with the Swift tool's even-stride subset (`i * count / n`)."""

    def __init__(self, base, limit, transform):
        n = len(base) if limit is None else min(limit, len(base))
        self.base, self.transform = base, transform
        self.indices = [i * len(base) // n for i in range(n)] if n else []
        self.classes = base.classes

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        image, label = self.base.image(self.indices[index])
        return self.transform(image), label


def transforms_for(image_size, scale_min, hflip, augment="full"):
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    normalize = [T.ToTensor(), T.Normalize(MEAN, STD)]
    if augment == "full":
        geometry = [T.RandomResizedCrop(image_size, scale=(scale_min, 1.0), ratio=(3 / 4, 4 / 3), interpolation=bicubic)]
    else:  # timm's no-aug training geometry: the shorter side to image_size, then a center crop
        geometry = [T.Resize(image_size, interpolation=bicubic), T.CenterCrop(image_size)]
    flips = [T.RandomHorizontalFlip(hflip)] if hflip > 0 and augment != "none" else []
    train = T.Compose(geometry + flips + normalize)
    evaluation = T.Compose([T.Resize(math.floor(image_size / CROP_FRACTION), interpolation=bicubic), T.CenterCrop(image_size)]
                           + normalize)
    return train, evaluation


# MARK: Model


def efficientnet_pytorch_to_timm(state, model):
    """Renames an efficientnet_pytorch EfficientNet-Lite state dict to `model`'s (timm) names.

    efficientnet_pytorch numbers blocks with one flat index (`_blocks.N`) and names layers by role;
    timm nests blocks by stage (`blocks.S.B`) and names them by position. The flat index follows
    timm's block order; a block with an `_expand_conv` is an inverted residual. The checkpoint's
    `_fc` (its 1000-class head) is left out."""
    top = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2."}
    inverted = {"_expand_conv.": "conv_pw.", "_bn0.": "bn1.", "_depthwise_conv.": "conv_dw.", "_bn1.": "bn2.",
                "_project_conv.": "conv_pwl.", "_bn2.": "bn3."}
    separable = {"_depthwise_conv.": "conv_dw.", "_bn1.": "bn1.", "_project_conv.": "conv_pw.", "_bn2.": "bn2."}
    positions = [(s, b) for s, stage in enumerate(model.blocks) for b in range(len(stage))]
    expands = {int(k.split(".")[1]) for k in state if k.startswith("_blocks.") and "._expand_conv." in k}
    out, dropped = {}, []
    for key, tensor in state.items():
        if key.startswith("_fc."):
            dropped.append(key)
            continue
        prefix = next((p for p in top if key.startswith(p)), None)
        if prefix:
            out[top[prefix] + key[len(prefix):]] = tensor
            continue
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "_blocks" or not parts[1].isdigit():
            raise KeyError(f"{key}: not an efficientnet_pytorch EfficientNet-Lite tensor name")
        index = int(parts[1])
        if index >= len(positions):
            raise KeyError(f"{key}: block {index}, but {MODEL} has {len(positions)} blocks")
        renames = inverted if index in expands else separable
        prefix = next((p for p in renames if parts[2].startswith(p)), None)
        if prefix is None:
            raise KeyError(f"{key}: unknown layer in an efficientnet_pytorch EfficientNet-Lite block")
        s, b = positions[index]
        out[f"blocks.{s}.{b}.{renames[prefix]}{parts[2][len(prefix):]}"] = tensor
    return out, dropped


def load_pretrained(model, path):
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    mapped, dropped = efficientnet_pytorch_to_timm(state, model)
    own = model.state_dict()
    expected = {k for k in own if not k.startswith("classifier.")}
    missing = sorted(expected - set(mapped))
    extra = sorted(set(mapped) - expected)
    wrong = sorted(k for k in expected & set(mapped) if tuple(own[k].shape) != tuple(mapped[k].shape))
    if missing or extra or wrong:
        raise RuntimeError(f"{path}: checkpoint does not fit {MODEL}: missing {missing[:5]}, unexpected {extra[:5]}, "
                           f"shape mismatch {wrong[:5]}")
    result = model.load_state_dict(mapped, strict=False)
    assert sorted(result.missing_keys) == sorted(k for k in own if k.startswith("classifier.")) and not result.unexpected_keys
    return len(mapped), dropped


@functools.lru_cache(maxsize=None)
def ssf_site_class():
    import torch

    class SSFSite(torch.nn.Module):
        """A per-channel scale and shift on NCHW activations: x · γ[c] + β[c], with
        γ ~ N(1, 0.02²) and β ~ N(0, 0.02²) at the start."""

        def __init__(self, channels):
            super().__init__()
            self.ssf_scale = torch.nn.Parameter(torch.empty(channels))
            self.ssf_shift = torch.nn.Parameter(torch.empty(channels))
            torch.nn.init.normal_(self.ssf_scale, mean=1.0, std=0.02)
            torch.nn.init.normal_(self.ssf_shift, mean=0.0, std=0.02)

        def forward(self, x):
            return x * self.ssf_scale.view(1, -1, 1, 1) + self.ssf_shift.view(1, -1, 1, 1)

    return SSFSite


def add_ssf(model):
    """Puts an SSF site after every batch norm, before its activation: timm's BatchNormAct2d runs
    norm → `drop` → `act`, and `drop` (an Identity here) becomes the site. Sites are created in
    module order: stem bn1, each block's bn1/bn2(/bn3), head bn2."""
    import torch
    from timm.layers import BatchNormAct2d

    sites = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            if not isinstance(module, BatchNormAct2d) or not isinstance(module.drop, torch.nn.Identity):
                raise RuntimeError(f"{name}: expected a BatchNormAct2d without dropout, found {module}")
            module.drop = ssf_site_class()(module.num_features)
            sites += 1
    return sites


def init_head(model, how):
    import torch
    from timm.layers import trunc_normal_

    head = model.classifier
    with torch.no_grad():
        if how == "zeros":
            head.weight.zero_()
            head.bias.zero_()
        elif how == "trunc-normal":
            trunc_normal_(head.weight, std=0.02)
            head.bias.zero_()
        else:
            head.reset_parameters()


def trains(name, method):
    if method == "full" or name.startswith("classifier."):
        return True
    if method == "bias":
        return name.endswith(".bias")
    if method == "ssf":
        return "ssf_scale" in name or "ssf_shift" in name
    return False


def set_mode(model, training, bn_train):
    import torch

    model.train(training)
    if training and not bn_train:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


# MARK: Training


def evaluate(model, loader, classes):
    import torch
    import torch.nn.functional as F

    set_mode(model, False, False)
    k = min(5, classes)
    images = top1 = top5 = 0
    loss_sum = 0.0
    class_images, class_correct = [0] * classes, [0] * classes
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            ranked = logits.topk(k, dim=1).indices
            hit1 = ranked[:, 0] == y
            top1 += int(hit1.sum())
            top5 += int((ranked == y[:, None]).any(dim=1).sum())
            images += len(y)
            for label, hit in zip(y.tolist(), hit1.tolist()):
                class_images[label] += 1
                class_correct[label] += int(hit)
    return {"loss": loss_sum / max(images, 1), "top1": 100 * top1 / max(images, 1), "top5": 100 * top5 / max(images, 1),
            "per_class": [100 * c / n if n else None for n, c in zip(class_images, class_correct)]}


def main():
    args = parse_args()
    config = resolve_config(args)
    versions = check_versions(args.any_versions)

    import numpy as np
    import timm
    import torch
    from timm.scheduler import CosineLRScheduler

    torch.set_num_threads(args.threads)
    torch.manual_seed(config["seed"])
    np.random.seed(config["seed"])

    weights = os.path.expanduser(args.weights)
    if not os.path.exists(weights) and os.path.basename(weights) == "efficientnet-lite0-57934424.pth":
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run(["bash", os.path.join(root, "tools", "fetch_real_data.sh")], check=True,
                       env={**os.environ, "SSF_CACHE": os.path.dirname(os.path.abspath(weights))}, stdout=sys.stderr)
    if not os.path.exists(weights):
        fail(f"{weights}: no such file")

    # Data.
    eval_split = config["eval_split"] or ("val" if has_split(args.data, "val") else "test")
    train_tf, eval_tf = transforms_for(config["image_size"], config["scale_min"], config["hflip"], config["augment"])
    train_set = TransformedSubset(open_split(args.data, config["train_split"]), config["train_limit"], train_tf)
    eval_set = TransformedSubset(open_split(args.data, eval_split), config["eval_limit"], eval_tf)
    classes = len(train_set.classes)
    batch = config["batch_size"]
    shuffle = torch.Generator().manual_seed(config["seed"])
    loader_options = {"num_workers": args.workers, "persistent_workers": args.workers > 0}
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=len(train_set) >= batch,
                                               generator=shuffle, **loader_options)
    eval_loader = torch.utils.data.DataLoader(eval_set, batch_size=batch, shuffle=False, **loader_options)
    updates = len(train_loader)
    if updates == 0:
        fail("the training split has no samples")

    # Model.
    model = timm.create_model(MODEL, pretrained=False, num_classes=classes, drop_path_rate=float(config["drop_path"] or 0))
    assert model.drop_rate == 0, "the recipe has no classifier dropout"
    loaded, dropped = load_pretrained(model, weights)
    init_head(model, config["head_init"])
    sites = add_ssf(model) if args.method == "ssf" else 0
    bn_train = config["bn"] == "train" or (config["bn"] == "auto" and args.method == "full")
    named = list(model.named_parameters())
    for name, p in named:
        p.requires_grad_(trains(name, args.method))
    params = [p for _, p in named if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": config["weight_decay"]},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config["lr"], betas=(0.9, 0.999), eps=1e-8)
    epochs, total_epochs = config["epochs"], config["epochs"] + config["cooldown_epochs"]
    scheduler = CosineLRScheduler(optimizer, t_initial=epochs * updates, lr_min=config["min_lr"],
                                  warmup_t=config["warmup_epochs"] * updates, warmup_lr_init=config["warmup_lr"], t_in_epochs=False)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=config["smoothing"])

    os.makedirs(args.output, exist_ok=True)
    for name in ("summary.json", "metrics.jsonl"):
        if os.path.exists(os.path.join(args.output, name)):
            os.remove(os.path.join(args.output, name))
    print(f"training {MODEL} (pytorch, {args.method}, {trainable} trainable, head {config['head_init']}, batch norm "
          f"{'train' if bn_train else 'frozen'}{f', {sites} SSF sites' if sites else ''}) on {len(train_set)} images, "
          f"selecting on {eval_split} ({len(eval_set)} images); {updates} updates/epoch; {loaded} checkpoint tensors loaded, "
          f"{len(dropped)} dropped; run directory {args.output}", flush=True)
    schedule = f"{epochs} cosine" + (f" (warmup {config['warmup_epochs']} from {config['warmup_lr']})" if config["warmup_epochs"] else "") \
        + (f" + {config['cooldown_epochs']} cooldown at {config['min_lr']}" if config["cooldown_epochs"] else "")
    print(f"schedule: {total_epochs} epoch{'s' if total_epochs != 1 else ''}: {schedule}, peak lr {config['lr']}, adamw weight decay "
          f"{config['weight_decay']}, batch {batch}", flush=True)

    train_seconds, first_batch_loss, step = 0.0, None, 0
    best_top1, best_epoch, result, lr_used = -1.0, -1, None, config["lr"]
    metrics_file = open(os.path.join(args.output, "metrics.jsonl"), "w")
    for epoch in range(total_epochs):
        set_mode(model, True, bn_train)
        loss_sum, loss_count, epoch_images, epoch_seconds = 0.0, 0, 0, 0.0
        clock = time.perf_counter()
        for index, (x, y) in enumerate(train_loader):
            loss = criterion(model(x), y)
            value = loss.item()
            if not math.isfinite(value):
                fail(f"the loss became {value} at epoch {epoch + 1}, batch {index + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr_used = optimizer.param_groups[0]["lr"]
            optimizer.step()
            step += 1
            scheduler.step_update(num_updates=step)
            if first_batch_loss is None:
                first_batch_loss = value
            loss_sum += value
            loss_count += 1
            epoch_images += len(y)
            now = time.perf_counter()
            epoch_seconds += now - clock
            clock = now
            if (index + 1) * 10 // updates != index * 10 // updates:
                print(f"epoch {epoch + 1}/{total_epochs} batch {index + 1}/{updates}  loss {loss_sum / loss_count:.4f}  "
                      f"{epoch_images / epoch_seconds:.1f} img/s", flush=True)
        train_seconds += epoch_seconds
        result = evaluate(model, eval_loader, classes)
        line = {"epoch": epoch, "train_loss": loss_sum / max(loss_count, 1), "eval_loss": result["loss"], "top1": result["top1"],
                "top5": result["top5"], "lr": lr_used, "images_per_s": epoch_images / epoch_seconds if epoch_seconds else 0,
                "epoch_seconds": epoch_seconds}
        metrics_file.write(json.dumps(line, sort_keys=True) + "\n")
        metrics_file.flush()
        if result["top1"] > best_top1:
            best_top1, best_epoch = result["top1"], epoch
        print(f"epoch {epoch + 1}/{total_epochs}  train_loss {line['train_loss']:.4f}  eval_loss {line['eval_loss']:.4f}  "
              f"top1 {line['top1']:.2f}  top5 {line['top5']:.2f}  lr {lr_used:.3g}  {line['images_per_s']:.1f} img/s  "
              f"{epoch_seconds:.1f} s", flush=True)
    metrics_file.close()

    images_per_epoch = min(len(train_set), updates * batch)
    summary = {
        "framework": "pytorch", **versions, "model": MODEL, "method": args.method, "data": args.data,
        "epochs": total_epochs, "best_top1": best_top1, "best_epoch": best_epoch + 1, "final_top1": result["top1"],
        "final_top5": result["top5"], "final_eval_loss": result["loss"], "trainable_params": trainable,
        "train_seconds": train_seconds, "train_images_per_s": images_per_epoch * total_epochs / train_seconds if train_seconds else 0,
        "selected_on": eval_split, "train_images": len(train_set), "eval_images": len(eval_set), "ema": False,
        "head_init": config["head_init"], "bn": "train" if bn_train else "frozen", "bn_flag": config["bn"], "ssf_sites": sites,
        "first_batch_loss": first_batch_loss, "threads": args.threads, "workers": args.workers,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "config": config,
        "per_class_top1": {name: acc for name, acc in zip(eval_set.classes, result["per_class"]) if acc is not None},
    }
    with open(os.path.join(args.output, "summary.json.tmp"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    os.replace(os.path.join(args.output, "summary.json.tmp"), os.path.join(args.output, "summary.json"))
    print(f"best top-1 {best_top1:.2f}% (epoch {best_epoch + 1}, selected on {eval_split}), final top-1 {result['top1']:.2f}%, "
          f"{trainable} trainable parameters, {train_seconds:.0f} s of training (pytorch)")


if __name__ == "__main__":
    main()
