# Reference values for Tests/SSFTrainingTests: AdamW and SGD (momentum, Nesterov) steps from
# PyTorch, and timm's CosineLRScheduler with warmup and cooldown, per update and per epoch.
# Run with /root/venv-torch/bin/python tools/gen_training_fixtures.py (torch 2.5.1, timm 1.0.11).
import json
import os

import torch
import timm
from timm.scheduler import CosineLRScheduler

assert torch.__version__.startswith("2.5.1"), torch.__version__
assert timm.__version__ == "1.0.11", timm.__version__

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SSFTrainingTests", "Fixtures", "training_reference.json")


def params():
    g = torch.Generator().manual_seed(7)
    w = torch.randn(3, 4, generator=g)  # rank 2: weight decay applies
    b = torch.randn(4, generator=g)     # rank 1: no weight decay
    grads = [[torch.randn(3, 4, generator=g), torch.randn(4, generator=g)] for _ in range(3)]
    return w, b, grads


def run(make_opt):
    w, b, grads = params()
    pw, pb = torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())
    opt = make_opt([{"params": [pw], "weight_decay": 0.05}, {"params": [pb], "weight_decay": 0.0}])
    for gw, gb in grads:
        pw.grad, pb.grad = gw.clone(), gb.clone()
        opt.step()
    return {
        "w": w.flatten().tolist(), "b": b.tolist(),
        "grads": [[gw.flatten().tolist(), gb.flatten().tolist()] for gw, gb in grads],
        "w_after": pw.detach().flatten().tolist(), "b_after": pb.detach().tolist(),
    }


def schedule(epochs, cooldown, warmup, base, warmup_lr, min_lr, steps_per_epoch):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    per_update = CosineLRScheduler(opt, t_initial=epochs * steps_per_epoch, lr_min=min_lr,
                                   warmup_t=warmup * steps_per_epoch, warmup_lr_init=warmup_lr, t_in_epochs=False)
    updates = [per_update._get_lr(u)[0] for u in range((epochs + cooldown) * steps_per_epoch)]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    per_epoch = CosineLRScheduler(opt, t_initial=epochs, lr_min=min_lr, warmup_t=warmup, warmup_lr_init=warmup_lr)
    epochs_lr = [per_epoch._get_lr(e)[0] for e in range(epochs + cooldown)]
    return {"epochs": epochs, "cooldown": cooldown, "warmup": warmup, "base": base, "warmup_lr": warmup_lr,
            "min_lr": min_lr, "steps_per_epoch": steps_per_epoch, "per_update": updates, "per_epoch": epochs_lr}


fixture = {
    "versions": {"torch": torch.__version__, "timm": timm.__version__},
    "adamw": {"lr": 1e-2, **run(lambda groups: torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.999), eps=1e-8))},
    "sgd": {"lr": 0.1, "momentum": 0.9, "nesterov": True,
            **run(lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True))},
    "schedules": [schedule(10, 2, 3, 1e-3, 1e-7, 1e-8, 5), schedule(4, 0, 1, 5e-2, 1e-6, 1e-5, 3)],
}
with open(OUT, "w") as f:
    json.dump(fixture, f, indent=1)
print("wrote", os.path.normpath(OUT))
