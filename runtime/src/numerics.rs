//! The numerics check of an [`crate::Executable`] (opt-in, see
//! [`crate::Executable::set_check_numerics`]): before the first kernel, every float data
//! input, param and state is scanned for NaN and infinities; after each kernel, every buffer it
//! wrote. The first one found stops the run, naming the input, or the kernel and the graph node
//! (op, name and source line) whose value it wrote.
//!
//! An infinity the graph asks for is no error: a kernel that uses an infinite constant (the
//! `-inf` padding of a max pooling, a mask) may write infinities; NaN is always reported.

use kiln_compiler::interp::{NonFinite, RunError};
use kiln_compiler::kernel::{Expr, Kernel, Program, Role};
use kiln_compiler::{DType, Graph, InputKind, Op, Origin, Type};

/// The graph node a kernel computes when it writes a buffer, as the check names it.
#[derive(Debug)]
struct Source {
    op: &'static str,
    name: Option<String>,
    origin: Option<Origin>,
}

/// What the check needs to know of a program, gathered at compile time from its graph.
#[derive(Debug)]
pub(crate) struct Numerics {
    /// By buffer: the node whose value a kernel writing it computes (for a state updated in
    /// place, the update's value).
    sources: Vec<Source>,
    /// By buffer: its kind, for data inputs, params and state.
    kinds: Vec<Option<InputKind>>,
    /// By kernel: whether it uses an infinite constant, so may write infinities.
    infinities: Vec<bool>,
}

impl Numerics {
    /// The facts about `p`, lowered from the graph `g`.
    pub(crate) fn new(g: &Graph, p: &Program) -> Numerics {
        let source = |id| {
            let n = g.node(id);
            Source {
                op: n.op.mnemonic(),
                name: n.name.clone(),
                origin: n.origin.clone(),
            }
        };
        let updates = g.updates();
        let sources = (p.buffers.iter())
            .map(|b| match &b.role {
                Role::State(name) => match updates.iter().find(|(n, _)| n == name) {
                    Some(&(_, value)) => source(value),
                    None => source(b.node),
                },
                _ => source(b.node),
            })
            .collect();
        let kinds = (p.buffers.iter())
            .map(|b| match &b.role {
                Role::Input(_) => Some(InputKind::Data),
                Role::State(_) => Some(match &g.node(b.node).op {
                    Op::Input { kind, .. } => *kind,
                    _ => InputKind::State,
                }),
                Role::Constant(_) | Role::Temp => None,
            })
            .collect();
        let infinite_buffer = |b: u32| match &p.buffers[b as usize].role {
            Role::Constant(a) => a.to_f64_vec().iter().any(|v| v.is_infinite()),
            _ => false,
        };
        let infinities = (p.kernels.iter())
            .map(|k| {
                let consts = match k {
                    Kernel::Loop(l) => (l.exprs.iter())
                        .any(|(e, _)| matches!(e, Expr::Const(v) if v.is_infinite())),
                    Kernel::Dot(_) | Kernel::Scatter(_) | Kernel::AllReduce(_) => false,
                };
                consts || k.reads().into_iter().any(infinite_buffer)
            })
            .collect();
        Numerics {
            sources,
            kinds,
            infinities,
        }
    }

    /// Scans every float data input, param and state of `p`, whose buffers are at `table`.
    pub(crate) fn check_inputs(&self, p: &Program, table: &[*mut u8]) -> Result<(), RunError> {
        for (b, buffer) in p.buffers.iter().enumerate() {
            let (Some(kind), Role::Input(name) | Role::State(name)) = (self.kinds[b], &buffer.role)
            else {
                continue;
            };
            if let Some((at, value)) = first_non_finite(table[b], &buffer.ty, false) {
                return Err(RunError::NonFiniteInput {
                    name: name.clone(),
                    kind,
                    value,
                    index: unravel(at, &buffer.ty.shape),
                });
            }
        }
        Ok(())
    }

    /// Scans the buffers kernel `k` of `p` wrote, at `table`.
    pub(crate) fn check_kernel(
        &self,
        k: usize,
        p: &Program,
        table: &[*mut u8],
    ) -> Result<(), RunError> {
        for b in p.kernels[k].writes() {
            let ty = &p.buffers[b as usize].ty;
            if let Some((at, value)) = first_non_finite(table[b as usize], ty, self.infinities[k]) {
                let s = &self.sources[b as usize];
                return Err(RunError::NonFiniteResult {
                    kernel: k,
                    op: s.op,
                    name: s.name.clone(),
                    origin: s.origin.clone(),
                    value,
                    index: unravel(at, &ty.shape),
                });
            }
        }
        Ok(())
    }
}

/// The position of the first element of the buffer at `ptr` (of type `ty`) that is NaN, or
/// infinite unless `infinities` are allowed, and what it is; `None` for integer and `bool`
/// buffers.
fn first_non_finite(ptr: *const u8, ty: &Type, infinities: bool) -> Option<(usize, NonFinite)> {
    let n = ty.numel();
    // SAFETY: during a run, every buffer's pointer holds `n` elements of its type.
    unsafe {
        match ty.dtype {
            DType::F32 => first(std::slice::from_raw_parts(ptr.cast::<f32>(), n), infinities),
            DType::F64 => first(std::slice::from_raw_parts(ptr.cast::<f64>(), n), infinities),
            DType::I32 | DType::Bool => None,
        }
    }
}

/// The position of the first of `values` that is NaN, or infinite unless `infinities` are
/// allowed, and what it is.
fn first<T: Copy + Into<f64>>(values: &[T], infinities: bool) -> Option<(usize, NonFinite)> {
    values.iter().enumerate().find_map(|(i, &v)| {
        let found = NonFinite::of(v.into())?;
        (found == NonFinite::NaN || !infinities).then_some((i, found))
    })
}

/// The row-major position of element `flat` of a tensor of shape `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        index[i] = flat % d.max(1);
        flat /= d.max(1);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::unravel;

    #[test]
    fn unravel_gives_row_major_positions() {
        assert_eq!(unravel(0, &[]), Vec::<usize>::new());
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(7, &[2, 2, 2]), vec![1, 1, 1]);
    }
}
