"""The JAX peer: every workload as one `jax.jit`-compiled function (a training step is the
whole forward, backward and update under one jit, parameters and optimizer state donated so
they update in place). Run by the kiln report; see common.py."""

import jax
import jax.numpy as jnp
from jax import lax

from common import emit, load, main, mlp_layers, params

tree_map = jax.tree_util.tree_map


def linear(p, name, h):
    return h @ p[f"{name}.w"] + p[f"{name}.b"]


def conv(p, name, h, padding):
    y = lax.conv_general_dilated(
        h, p[f"{name}.w"], (1, 1), [(padding, padding)] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW")
    )
    return y + p[f"{name}.b"][None, :, None, None]


def pool(h):
    return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def forward(w, p, x):
    """The logits of kiln's MLP or LeNet-5 with parameters `p`."""
    if w["net"] == "mlp":
        h = x
        for i, name in enumerate(mlp_layers(w)):
            h = linear(p, name, jax.nn.relu(h) if i else h)
        return h
    h = x.reshape(-1, 1, 28, 28)
    h = pool(jax.nn.relu(conv(p, "conv1", h, 2)))
    h = pool(jax.nn.relu(conv(p, "conv2", h, 0)))
    h = h.reshape(h.shape[0], -1)
    h = jax.nn.relu(linear(p, "fc1", h))
    h = jax.nn.relu(linear(p, "fc2", h))
    return linear(p, "fc3", h)


def cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def make_step(w):
    """The training step: (params, state, x, labels) -> (params, state, loss)."""
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

    def train_step(p, state, x, labels):
        loss, grads = jax.value_and_grad(lambda p: cross_entropy(forward(w, p, x), labels))(p)
        p, state = update(p, state, grads)
        return p, state, loss

    return jax.jit(train_step, donate_argnums=(0, 1))


def initial(w, spec_dir):
    p = {k: jnp.asarray(v) for k, v in params(spec_dir, w).items()}
    if w["opt"] == "sgd":
        state = ()
    else:
        zeros = tree_map(jnp.zeros_like, p)
        state = (jnp.float32(0), zeros, tree_map(jnp.zeros_like, p))
    x = jnp.asarray(load(spec_dir, w["x"]))
    labels = jnp.asarray(load(spec_dir, w["labels"]))
    return p, state, x, labels


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
            p, state, x, labels = holder
            p, state, loss = step(p, state, x, labels)
            holder[0], holder[1] = p, state
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
    emit(engine="jax", version=jax.__version__)
    main({"jax": make})
