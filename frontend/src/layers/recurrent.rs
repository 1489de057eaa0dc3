//! Recurrent layers, unrolled over a sequence of static length: a tanh RNN and an LSTM.
//!
//! Both keep their weights as one matrix per input, every gate side by side in its columns
//! (`w_ih: [features, gates * hidden]`, `w_hh: [hidden, gates * hidden]`), so a step is two
//! matrix products and one elementwise kernel over their sum.

use super::{Layers, rank_error};
use crate::Tensor;
use kiln_compiler::TypeErrorKind;

/// What a recurrent layer computed over a sequence.
#[derive(Clone, Debug)]
pub struct Recurrent {
    /// The hidden state after each step, `[N, hidden]`, first step first (empty if the layer
    /// failed).
    pub outputs: Vec<Tensor>,
    /// The hidden state after the last step, `[N, hidden]` (poisoned if the layer failed).
    pub hidden: Tensor,
    /// The LSTM's cell state after the last step, `[N, hidden]`; `None` for the RNN.
    pub cell: Option<Tensor>,
}

/// The function a step applies to its gates' pre-activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    /// `h = tanh(pre)`.
    Tanh,
    /// The LSTM's four gates, in PyTorch's order `i, f, g, o`.
    Lstm,
}

impl Cell {
    /// Gates side by side in the weights' columns.
    fn gates(self) -> usize {
        match self {
            Cell::Tanh => 1,
            Cell::Lstm => 4,
        }
    }

    /// The hidden and cell states after a step from the pre-activations `pre: [N, gates *
    /// hidden]` and the previous cell state (`None` for zeros).
    #[track_caller]
    fn step(self, pre: &Tensor, c: Option<&Tensor>, hidden: usize) -> (Tensor, Option<Tensor>) {
        match self {
            Cell::Tanh => (pre.tanh(), None),
            Cell::Lstm => {
                let i = pre.narrow(1, 0, hidden).sigmoid();
                let g = pre.narrow(1, 2 * hidden, hidden).tanh();
                let o = pre.narrow(1, 3 * hidden, hidden).sigmoid();
                let c = match c {
                    Some(c) => pre.narrow(1, hidden, hidden).sigmoid() * c + i * g,
                    None => i * g,
                };
                (o * c.tanh(), Some(c))
            }
        }
    }
}

impl Layers<'_> {
    /// An Elman RNN over `xs: [N, T, features]` (batch first): `h_t = tanh(x_t w_ih + b_ih +
    /// h_{t-1} w_hh + b_hh)` from `h_0 = 0`. Parameters `<name>.w_ih: [features, hidden]`,
    /// `<name>.w_hh: [hidden, hidden]`, `<name>.b_ih`, `<name>.b_hh: [hidden]`, all uniform in
    /// `±1/sqrt(hidden)` as PyTorch draws them.
    #[track_caller]
    pub fn rnn(&self, name: &str, xs: &Tensor, hidden: usize) -> Recurrent {
        self.unroll(name, xs, hidden, Cell::Tanh)
    }

    /// An LSTM over `xs: [N, T, features]` (batch first), from zero hidden and cell states,
    /// with PyTorch's gates:
    ///
    /// ```text
    /// i = σ(x W_ii + b_ii + h W_hi + b_hi)    f = σ(x W_if + b_if + h W_hf + b_hf)
    /// g = tanh(x W_ig + b_ig + h W_hg + b_hg) o = σ(x W_io + b_io + h W_ho + b_ho)
    /// c' = f ⊙ c + i ⊙ g                      h' = o ⊙ tanh(c')
    /// ```
    ///
    /// Parameters `<name>.w_ih: [features, 4 hidden]` and `<name>.w_hh: [hidden, 4 hidden]`
    /// (the gates' matrices side by side in the order i, f, g, o), `<name>.b_ih`,
    /// `<name>.b_hh: [4 hidden]`, all uniform in `±1/sqrt(hidden)` as PyTorch draws them.
    #[track_caller]
    pub fn lstm(&self, name: &str, xs: &Tensor, hidden: usize) -> Recurrent {
        self.unroll(name, xs, hidden, Cell::Lstm)
    }

    #[track_caller]
    fn unroll(&self, name: &str, xs: &Tensor, hidden: usize, cell: Cell) -> Recurrent {
        let op = match cell {
            Cell::Tanh => "rnn",
            Cell::Lstm => "lstm",
        };
        let failed = |t: Tensor| Recurrent {
            outputs: vec![],
            hidden: t,
            cell: None,
        };
        let &[n, steps, features] = xs.shape() else {
            return failed(rank_error(xs, op, "3 ([N, T, features])"));
        };
        if steps == 0 {
            let empty = TypeErrorKind::BadAttribute("the sequence has no steps".into());
            return failed(xs.fail(op, empty));
        }
        let width = cell.gates() * hidden;
        let w_ih = self.fan_in_param(&format!("{name}.w_ih"), xs, &[features, width], hidden);
        let w_hh = self.fan_in_param(&format!("{name}.w_hh"), xs, &[hidden, width], hidden);
        let b_ih = self.fan_in_param(&format!("{name}.b_ih"), xs, &[width], hidden);
        let b_hh = self.fan_in_param(&format!("{name}.b_hh"), xs, &[width], hidden);
        let bias = b_ih + b_hh;
        let mut outputs: Vec<Tensor> = Vec::with_capacity(steps);
        let mut c = None;
        for t in 0..steps {
            let x = xs.narrow(1, t, 1).reshape(&[n as isize, features as isize]);
            let mut pre = x.matmul(&w_ih) + &bias;
            if let Some(h) = outputs.last() {
                pre = pre + h.matmul(&w_hh);
            }
            let (h, next) = cell.step(&pre, c.as_ref(), hidden);
            outputs.push(h);
            c = next;
        }
        Recurrent {
            hidden: outputs[steps - 1].clone(),
            outputs,
            cell: c,
        }
    }
}
