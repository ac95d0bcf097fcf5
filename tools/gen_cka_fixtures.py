# Reference values for Tests/SSFAnalysisTests: minibatch CKA with the unbiased HSIC estimator, linear
# and RBF kernels, computed with plain NumPy matrix algebra (a separate formulation from the Swift
# code's single pass: explicit K̃·L̃ products and traces).
# Run with /root/venv-torch/bin/python tools/gen_cka_fixtures.py (numpy 2.4.6).
import json
import os

import numpy as np

assert np.__version__ == "2.4.6", np.__version__

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SSFAnalysisTests", "Fixtures", "cka_reference.json")


def gram_linear(x):
    x = x.astype(np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    return x @ x.T


def gram_rbf(x, fraction):
    x = x.astype(np.float64)
    diff = x[:, None, :] - x[None, :, :]
    d2 = (diff ** 2).sum(axis=-1)
    iu = np.triu_indices(x.shape[0], k=1)
    sigma = fraction * np.median(np.sqrt(d2[iu]))
    return np.exp(-d2 / (2 * sigma ** 2))


def hsic_unbiased(k, l):
    n = k.shape[0]
    kt = k.copy(); np.fill_diagonal(kt, 0)
    lt = l.copy(); np.fill_diagonal(lt, 0)
    ones = np.ones(n)
    term1 = np.trace(kt @ lt)
    term2 = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (ones @ kt @ lt @ ones)
    return (term1 + term2 - term3) / (n * (n - 3))


def minibatch_cka(x, y, batch, gram):
    xy = xx = yy = 0.0
    for start in range(0, x.shape[0], batch):
        k, l = gram(x[start:start + batch]), gram(y[start:start + batch])
        xy += hsic_unbiased(k, l); xx += hsic_unbiased(k, k); yy += hsic_unbiased(l, l)
    return xy / np.sqrt(xx * yy)


def main():
    rng = np.random.default_rng(20221201)
    n, dx, dy, batch = 48, 20, 12, 16
    x = rng.standard_normal((n, dx)).astype(np.float32) + 0.5
    w = rng.standard_normal((dx, dy)).astype(np.float32)
    y = (np.tanh(x @ w) + 0.3 * rng.standard_normal((n, dy))).astype(np.float32)
    z = rng.standard_normal((n, dy)).astype(np.float32)  # unrelated to x
    rbf = lambda a: gram_rbf(a, 0.8)
    out = {
        "n": n, "dx": dx, "dy": dy, "batch": batch, "rbf_sigma_fraction": 0.8,
        "x": x.flatten().tolist(), "y": y.flatten().tolist(), "z": z.flatten().tolist(),
        "hsic_xy_first_batch_linear": hsic_unbiased(gram_linear(x[:batch]), gram_linear(y[:batch])),
        "gram_x_first_batch_rbf": rbf(x[:batch]).flatten().tolist(),
        "cka_xy_linear": minibatch_cka(x, y, batch, gram_linear),
        "cka_xy_rbf": minibatch_cka(x, y, batch, rbf),
        "cka_xz_linear": minibatch_cka(x, z, batch, gram_linear),
        "cka_xy_linear_one_batch": minibatch_cka(x, y, n, gram_linear),
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=0)
    print(OUT, {k: v for k, v in out.items() if k.startswith("cka") or k.startswith("hsic")})


if __name__ == "__main__":
    main()
