"""The PyTorch peer, eager and with `torch.compile`: training steps with `nn.Linear` layers,
`F.cross_entropy` and `torch.optim.SGD`/`Adam` (under torch.compile, the model and the
optimizer's step are compiled, as PyTorch's recipes do). Run by the kiln report; see
common.py."""

import torch
import torch.nn.functional as F

from common import emit, load, main, mlp_layers, params


def tensor(spec_dir, name):
    return torch.from_numpy(load(spec_dir, name))


def make_model(w, spec_dir):
    """kiln's MLP or LeNet-5 as an nn.Sequential holding kiln's initial parameters
    (nn.Linear stores its weight as [out, in], kiln as [in, out])."""
    p = params(spec_dir, w)
    nn = torch.nn

    def linear(name):
        weight = p[f"{name}.w"]
        lin = nn.Linear(weight.shape[0], weight.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weight).T)
            lin.bias.copy_(torch.from_numpy(p[f"{name}.b"]))
        return lin

    def conv(name, padding):
        weight = p[f"{name}.w"]
        c = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=padding)
        with torch.no_grad():
            c.weight.copy_(torch.from_numpy(weight))
            c.bias.copy_(torch.from_numpy(p[f"{name}.b"]))
        return c

    if w["net"] == "mlp":
        layers = []
        for i, name in enumerate(mlp_layers(w)):
            layers += [nn.ReLU()] if i else []
            layers.append(linear(name))
        return nn.Sequential(*layers)
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        conv("conv1", 2), nn.ReLU(), nn.MaxPool2d(2),
        conv("conv2", 0), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        linear("fc1"), nn.ReLU(),
        linear("fc2"), nn.ReLU(),
        linear("fc3"),
    )  # fmt: skip


def make_optimizer(w, model):
    if w["opt"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=w["lr"])
    return torch.optim.Adam(
        model.parameters(), lr=w["lr"], betas=(w["beta1"], w["beta2"]), eps=w["eps"]
    )


def make_train(w, spec_dir, compiled):
    model = make_model(w, spec_dir)
    opt = make_optimizer(w, model)
    forward = torch.compile(model) if compiled else model
    opt_step = torch.compile(opt.step) if compiled else opt.step
    x = tensor(spec_dir, w["x"])
    labels = tensor(spec_dir, w["labels"]).long()

    def run():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), labels)
        loss.backward()
        opt_step()
        return loss.item()

    return run


def make(compiled):
    def maybe(f):
        return torch.compile(f) if compiled else f

    def build(w, spec_dir):
        kind = w["kind"]
        if kind == "chain":
            x = tensor(spec_dir, w["x"])
            f = maybe(lambda x: torch.tanh(x * 0.5 + 0.1) * torch.sigmoid(x) + torch.relu(x))
            return lambda: f(x)
        if kind == "softmax_xent":
            logits = tensor(spec_dir, w["logits"]).requires_grad_()
            labels = tensor(spec_dir, w["labels"]).long()

            def fwd_bwd(z):
                loss = F.cross_entropy(z, labels)
                return loss, torch.autograd.grad(loss, z)[0]

            f = maybe(fwd_bwd)
            return lambda: f(logits)
        if kind == "gemm":
            a, b = tensor(spec_dir, w["a"]), tensor(spec_dir, w["b"])
            f = maybe(torch.mm)
            return lambda: f(a, b)
        if kind == "train":
            return make_train(w, spec_dir, compiled)
        if kind == "compile":
            if not compiled:
                return None

            def run():
                # Forget every compiled graph, then compile the step anew by running it once.
                torch._dynamo.reset()
                make_train(w, spec_dir, True)()

            return run
        return None

    return build


if __name__ == "__main__":
    emit(engine="pytorch", version=torch.__version__)
    main({"pytorch eager": make(False), "pytorch compile": make(True)})
