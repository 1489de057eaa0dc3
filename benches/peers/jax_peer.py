"""The JAX peer: every workload as one `jax.jit`-compiled function (a training step is the
whole forward, backward and update under one jit, parameters and optimizer state donated so
they update in place; an LSTM is a `lax.scan` over its steps; batch norm normalizes with the
batch's statistics and updates its running ones, as kiln's and PyTorch's training mode do).
Run by the kiln report as a long-lived process; see common.py."""

from common import CIFAR_CONVS, load, lstm_rows, mlp_layers, params, resnet18_blocks, serve

import jax
import jax.numpy as jnp
from jax import lax

tree_map = jax.tree_util.tree_map

# Batch norm's constants, as kiln's and PyTorch's.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def linear(p, name, h):
    return h @ p[f"{name}.w"] + p[f"{name}.b"]


def conv(p, name, h, padding, stride=1):
    y = lax.conv_general_dilated(
        h, p[f"{name}.w"], (stride, stride), [(padding, padding)] * 2,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )  # fmt: skip
    if f"{name}.b" in p:
        y = y + p[f"{name}.b"][None, :, None, None]
    return y


def pool(h):
    return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


relu = jax.nn.relu


class BatchNorm:
    """Batch norm in training mode; collects the running statistics' new values."""

    def __init__(self, p, stats):
        self.p, self.stats, self.new = p, stats, {}

    def __call__(self, name, x):
        mean = jnp.mean(x, axis=(0, 2, 3))
        centered = x - mean[None, :, None, None]
        var = jnp.mean(centered * centered, axis=(0, 2, 3))
        count = x.size // x.shape[1]
        m, v = self.stats[f"{name}.running_mean"], self.stats[f"{name}.running_var"]
        self.new[f"{name}.running_mean"] = (1 - BN_MOMENTUM) * m + BN_MOMENTUM * mean
        self.new[f"{name}.running_var"] = (1 - BN_MOMENTUM) * v + BN_MOMENTUM * var * (count / (count - 1))
        scale = self.p[f"{name}.gamma"] * lax.rsqrt(var + BN_EPS)
        return centered * scale[None, :, None, None] + self.p[f"{name}.beta"][None, :, None, None]


def lstm(p, w, x):
    """The last hidden state of kiln's LSTM over the digit's rows, as a lax.scan over the
    steps (the input projections of every step computed up front, as one product)."""
    steps, features, pad = lstm_rows(w)
    rows = x.reshape(-1, 28, 28)
    if pad:
        rows = jnp.pad(rows, ((0, 0), (pad, pad), (pad, pad)))
    w_ih, w_hh = p["lstm.w_ih"], p["lstm.w_hh"]
    hidden = w_hh.shape[0]
    inputs = jnp.einsum("ntf,fg->tng", rows, w_ih) + (p["lstm.b_ih"] + p["lstm.b_hh"])

    def step(carry, pre_x):
        h, c = carry
        pre = pre_x + h @ w_hh
        i = jax.nn.sigmoid(pre[:, :hidden])
        f = jax.nn.sigmoid(pre[:, hidden : 2 * hidden])
        g = jnp.tanh(pre[:, 2 * hidden : 3 * hidden])
        o = jax.nn.sigmoid(pre[:, 3 * hidden :])
        c = f * c + i * g
        return (o * jnp.tanh(c), c), None

    zeros = jnp.zeros((rows.shape[0], hidden), rows.dtype)
    (h, _), _ = lax.scan(step, (zeros, zeros), inputs)
    return h


def forward(w, p, stats, x):
    """The logits of kiln's model `w["net"]` with parameters `p`, and the new values of the
    batch norms' running statistics `stats` (none for the models without batch norm)."""
    net = w["net"]
    bn = BatchNorm(p, stats)
    if net == "mlp":
        h = x
        for i, name in enumerate(mlp_layers(w)):
            h = linear(p, name, relu(h) if i else h)
        return h, bn.new
    if net == "lenet":
        h = x.reshape(-1, 1, 28, 28)
        h = pool(relu(conv(p, "conv1", h, 2)))
        h = pool(relu(conv(p, "conv2", h, 0)))
        h = h.reshape(h.shape[0], -1)
        h = relu(linear(p, "fc1", h))
        h = relu(linear(p, "fc2", h))
        return linear(p, "fc3", h), bn.new
    if net in ("lstm", "lstm_32x32"):
        return linear(p, "fc", lstm(p, w, x)), bn.new
    h = x.reshape(-1, *w["image"])
    if net == "keras_cnn":
        for name in ("conv1", "conv2", "conv3"):
            h = pool(relu(conv(p, name, h, 0)))
        h = relu(linear(p, "fc1", h.reshape(h.shape[0], -1)))
        return linear(p, "fc2", h), bn.new
    if net == "cifar_cnn":
        for i, (name, _, _) in enumerate(CIFAR_CONVS):
            h = relu(conv(p, name, h, 1))
            h = pool(h) if i % 2 else h
        h = relu(linear(p, "fc1", h.reshape(h.shape[0], -1)))
        return linear(p, "fc2", h), bn.new
    if net == "resnet18":
        h = relu(bn("stem.bn", conv(p, "stem", h, 1)))
        for name, c_in, c, stride in resnet18_blocks():
            y = relu(bn(f"{name}.conv1.bn", conv(p, f"{name}.conv1", h, 1, stride)))
            y = bn(f"{name}.conv2.bn", conv(p, f"{name}.conv2", y, 1))
            if stride != 1 or c_in != c:
                h = bn(f"{name}.proj.bn", conv(p, f"{name}.proj", h, 0, stride))
            h = relu(y + h)
        return linear(p, "fc", jnp.mean(h, axis=(2, 3))), bn.new
    raise ValueError(f"no model {net}")


def cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def make_step(w):
    """The training step: (params, state, stats, x, labels) -> (params, state, stats, loss)."""
    lr = w["lr"]
    if w["opt"] == "sgd":

        def update(p, state, grads):
            return tree_map(lambda p, g: p - lr * g, p, grads), state

    else:
        b1, b2, eps = w["beta1"], w["beta2"], w["eps"]

        def update(p, state, grads):
            t, m, v = state
            t = t + 1
            m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
            v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)

            def step(p, m, v):
                return p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps)

            return tree_map(step, p, m, v), (t, m, v)

    def train_step(p, state, stats, x, labels):
        def loss_fn(p):
            logits, new_stats = forward(w, p, stats, x)
            return cross_entropy(logits, labels), new_stats

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        p, state = update(p, state, grads)
        return p, state, new_stats, loss

    return jax.jit(train_step, donate_argnums=(0, 1, 2))


def initial(w, spec_dir):
    loaded = {k: jnp.asarray(v) for k, v in params(spec_dir, w).items()}
    running = (".running_mean", ".running_var")
    stats = {k: v for k, v in loaded.items() if k.endswith(running)}
    p = {k: v for k, v in loaded.items() if not k.endswith(running)}
    if w["opt"] == "sgd":
        state = ()
    else:
        zeros = tree_map(jnp.zeros_like, p)
        state = (jnp.float32(0), zeros, tree_map(jnp.zeros_like, p))
    x = jnp.asarray(load(spec_dir, w["x"]))
    labels = jnp.asarray(load(spec_dir, w["labels"]))
    return p, state, stats, x, labels


def make(w, spec_dir):
    kind = w["kind"]
    if kind == "chain":
        x = jnp.asarray(load(spec_dir, w["x"]))
        a, b = jnp.float32(0.5), jnp.float32(0.1)
        f = jax.jit(lambda x, a, b: jnp.tanh(x * a + b) * jax.nn.sigmoid(x) + jax.nn.relu(x))
        return lambda: f(x, a, b).block_until_ready()
    if kind == "softmax_xent":
        logits = jnp.asarray(load(spec_dir, w["logits"]))
        labels = jnp.asarray(load(spec_dir, w["labels"]))
        f = jax.jit(jax.value_and_grad(lambda z: cross_entropy(z, labels)))
        return lambda: jax.block_until_ready(f(logits))
    if kind == "gemm":
        a = jnp.asarray(load(spec_dir, w["a"]))
        b = jnp.asarray(load(spec_dir, w["b"]))
        f = jax.jit(jnp.matmul)
        return lambda: f(a, b).block_until_ready()
    if kind == "train":
        step = make_step(w)
        holder = list(initial(w, spec_dir))

        def run():
            p, state, stats, x, labels = holder
            p, state, stats, loss = step(p, state, stats, x, labels)
            holder[0], holder[1], holder[2] = p, state, stats
            return float(loss)

        return run
    if kind == "compile":
        args = initial(w, spec_dir)

        def run():
            # A new jit of a new function: traced, differentiated and compiled from scratch.
            make_step(w).lower(*args).compile()

        return run
    return None


if __name__ == "__main__":
    serve("jax", jax.__version__, {"jax": make})
