"""The PyTorch peer, eager and with `torch.compile`: training steps with `nn` modules
(`nn.Linear`, `nn.Conv2d`, `nn.MaxPool2d`, `nn.BatchNorm2d` in training mode, `nn.LSTM`),
`F.cross_entropy` and `torch.optim.SGD`/`Adam` (under torch.compile, the model and the
optimizer's step are compiled, as PyTorch's recipes do). Run by the kiln report as a
long-lived process; see common.py."""

from common import (
    CIFAR_CONVS,
    load,
    lstm_rows,
    mlp_layers,
    params,
    resnet18_blocks,
    serve,
)

import torch
import torch.nn.functional as F

nn = torch.nn


def tensor(spec_dir, name):
    return torch.from_numpy(load(spec_dir, name))


def copy(dst, src):
    with torch.no_grad():
        dst.copy_(torch.from_numpy(src))


class BasicBlock(nn.Module):
    """ResNet-18's basic block, kiln's parameter names."""

    def __init__(self, layers, name, c_in, c, stride):
        super().__init__()
        self.conv1 = layers.conv(f"{name}.conv1", 1, stride)
        self.bn1 = layers.bn(f"{name}.conv1.bn")
        self.conv2 = layers.conv(f"{name}.conv2", 1)
        self.bn2 = layers.bn(f"{name}.conv2.bn")
        self.proj = None
        if stride != 1 or c_in != c:
            self.proj = nn.Sequential(layers.conv(f"{name}.proj", 0, stride), layers.bn(f"{name}.proj.bn"))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.proj is None else self.proj(x)))


class Lstm(nn.Module):
    """kiln's LSTM models: the digit's rows (padded for lstm_32x32) through nn.LSTM, a linear
    head on the last hidden state."""

    def __init__(self, w, layers, p):
        super().__init__()
        self.steps, self.features, self.pad = lstm_rows(w)
        hidden = w["hidden"]
        self.lstm = nn.LSTM(self.features, hidden, batch_first=True)
        # kiln keeps [in, 4 hidden] with the gates i, f, g, o side by side: PyTorch's order,
        # transposed.
        copy(self.lstm.weight_ih_l0, p["lstm.w_ih"].T.copy())
        copy(self.lstm.weight_hh_l0, p["lstm.w_hh"].T.copy())
        copy(self.lstm.bias_ih_l0, p["lstm.b_ih"])
        copy(self.lstm.bias_hh_l0, p["lstm.b_hh"])
        self.fc = layers.linear("fc")

    def forward(self, x):
        rows = x.reshape(-1, 28, 28)
        if self.pad:
            rows = F.pad(rows, (self.pad,) * 4)
        _, (h, _) = self.lstm(rows)
        return self.fc(h[-1])


class Layers:
    """nn modules holding kiln's initial parameters (nn.Linear stores its weight as
    [out, in], kiln as [in, out])."""

    def __init__(self, p):
        self.p = p

    def linear(self, name):
        weight = self.p[f"{name}.w"]
        lin = nn.Linear(weight.shape[0], weight.shape[1])
        copy(lin.weight, weight.T.copy())
        copy(lin.bias, self.p[f"{name}.b"])
        return lin

    def conv(self, name, padding, stride=1):
        weight = self.p[f"{name}.w"]
        bias = f"{name}.b" in self.p
        c = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], stride, padding, bias=bias)
        copy(c.weight, weight)
        if bias:
            copy(c.bias, self.p[f"{name}.b"])
        return c

    def bn(self, name):
        gamma = self.p[f"{name}.gamma"]
        b = nn.BatchNorm2d(gamma.shape[0])  # eps 1e-5, momentum 0.1, as kiln's
        copy(b.weight, gamma)
        copy(b.bias, self.p[f"{name}.beta"])
        return b


def make_model(w, spec_dir):
    """kiln's model `w["net"]` holding kiln's initial parameters, in training mode."""
    p = params(spec_dir, w)
    layers = Layers(p)
    linear, conv = layers.linear, layers.conv
    net = w["net"]
    if net == "mlp":
        modules = []
        for i, name in enumerate(mlp_layers(w)):
            modules += [nn.ReLU()] if i else []
            modules.append(linear(name))
        return nn.Sequential(*modules)
    if net == "lenet":
        return nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            conv("conv1", 2), nn.ReLU(), nn.MaxPool2d(2),
            conv("conv2", 0), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            linear("fc1"), nn.ReLU(),
            linear("fc2"), nn.ReLU(),
            linear("fc3"),
        )  # fmt: skip
    if net in ("lstm", "lstm_32x32"):
        return Lstm(w, layers, p)
    image = nn.Unflatten(1, tuple(w["image"]))
    if net == "keras_cnn":
        return nn.Sequential(
            image,
            conv("conv1", 0), nn.ReLU(), nn.MaxPool2d(2),
            conv("conv2", 0), nn.ReLU(), nn.MaxPool2d(2),
            conv("conv3", 0), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            linear("fc1"), nn.ReLU(),
            linear("fc2"),
        )  # fmt: skip
    if net == "cifar_cnn":
        modules = [image]
        for i, (name, _, _) in enumerate(CIFAR_CONVS):
            modules += [conv(name, 1), nn.ReLU()] + ([nn.MaxPool2d(2)] if i % 2 else [])
        modules += [nn.Flatten(), linear("fc1"), nn.ReLU(), linear("fc2")]
        return nn.Sequential(*modules)
    if net == "resnet18":
        stem = [image, conv("stem", 1), layers.bn("stem.bn"), nn.ReLU()]
        blocks = [BasicBlock(layers, *b) for b in resnet18_blocks()]
        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear("fc")]
        return nn.Sequential(*stem, *blocks, *head)
    raise ValueError(f"no model {net}")


def make_optimizer(w, model):
    if w["opt"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=w["lr"])
    return torch.optim.Adam(
        model.parameters(), lr=w["lr"], betas=(w["beta1"], w["beta2"]), eps=w["eps"]
    )


def make_train(w, spec_dir, compiled):
    if compiled:
        # Models of earlier workloads share their code (nn.Sequential.forward, SGD.step):
        # forget their compiled graphs, so that this one does not count as their recompile
        # (past torch._dynamo's recompile limit, it would silently run eager).
        torch._dynamo.reset()
    model = make_model(w, spec_dir)
    model.train()
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
    serve("torch", torch.__version__, {"pytorch eager": make(False), "pytorch compile": make(True)})
