"""The JAX peer: every workload as one `jax.jit`-compiled function (a training step is the
whole forward, backward and update under one jit, parameters and optimizer state donated so
they update in place). Run by the kiln report; see common.py."""

import jax
import jax.numpy as jnp

from common import emit, load, main, mlp_params


def mlp_loss(params, x, labels):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i + 1 < len(params):
            h = jax.nn.relu(h)
    logp = jax.nn.log_softmax(h, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def make_step(w):
    """The training step: (params, state, x, labels) -> (params, state, loss)."""
    lr = w["lr"]
    if w["opt"] == "sgd":

        def update(params, state, grads):
            return [(p - lr * g, q - lr * h) for (p, q), (g, h) in zip(params, grads)], state

    else:
        b1, b2, eps = w["beta1"], w["beta2"], w["eps"]

        def update(params, state, grads):
            t, ms, vs = state
            t = t + 1
            flat_p = jax.tree_util.tree_leaves(params)
            flat_g = jax.tree_util.tree_leaves(grads)
            new_p, new_m, new_v = [], [], []
            for p, g, m, v in zip(flat_p, flat_g, ms, vs):
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                mhat = m / (1 - b1**t)
                vhat = v / (1 - b2**t)
                new_p.append(p - lr * mhat / (jnp.sqrt(vhat) + eps))
                new_m.append(m)
                new_v.append(v)
            params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), new_p)
            return params, (t, new_m, new_v)

    def step(params, state, x, labels):
        loss, grads = jax.value_and_grad(mlp_loss)(params, x, labels)
        params, state = update(params, state, grads)
        return params, state, loss

    return jax.jit(step, donate_argnums=(0, 1))


def initial(w, spec_dir):
    params = [(jnp.asarray(a), jnp.asarray(b)) for a, b in mlp_params(spec_dir, w)]
    if w["opt"] == "sgd":
        state = ()
    else:
        leaves = jax.tree_util.tree_leaves(params)
        state = (jnp.float32(0), [jnp.zeros_like(p) for p in leaves], [jnp.zeros_like(p) for p in leaves])
    x = jnp.asarray(load(spec_dir, w["x"]))
    labels = jnp.asarray(load(spec_dir, w["labels"]))
    return params, state, x, labels


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

        def loss(z):
            logp = jax.nn.log_softmax(z, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

        f = jax.jit(jax.value_and_grad(loss))
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
            params, state, x, labels = holder
            params, state, loss = step(params, state, x, labels)
            holder[0], holder[1] = params, state
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
