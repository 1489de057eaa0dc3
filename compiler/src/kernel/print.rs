//! The printed form of the kernel IR (`kiln dump --stage kernels`).

use super::{Cond, DotKernel, Expr, Kernel, LoopKernel, Matrix, Program, Role, StageKind};
use std::fmt::{self, Write};

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "program {} {{", self.name)?;
        for (i, b) in self.buffers.iter().enumerate() {
            let role = match &b.role {
                Role::Input(n) => format!("input \"{n}\""),
                Role::State(n) => format!("state \"{n}\""),
                Role::Constant(_) => "constant".to_string(),
                Role::Temp => "temp".to_string(),
            };
            writeln!(f, "  b{i} = {role} : {}", b.ty)?;
        }
        for (i, k) in self.kernels.iter().enumerate() {
            write!(f, "  k{i} = ")?;
            match k {
                Kernel::Loop(l) => write_loop(f, l)?,
                Kernel::Dot(d) => write_dot(f, d)?,
                Kernel::Scatter(s) => writeln!(
                    f,
                    "scatter_add b{} at b{} axis {} -> b{}",
                    s.updates, s.indices, s.axis, s.out
                )?,
                Kernel::AllReduce(a) => {
                    let pairs: Vec<String> = (a.pairs.iter())
                        .map(|(i, o)| format!("b{i} -> b{o}"))
                        .collect();
                    writeln!(f, "all_reduce {}", pairs.join(", "))?
                }
            }
        }
        for (name, b) in &self.outputs {
            writeln!(f, "  output {name} = b{b}")?;
        }
        for (name, state, value) in &self.updates {
            if state == value {
                writeln!(f, "  update {name} in place (b{state})")?;
            } else {
                writeln!(f, "  update {name} = b{state} <- b{value}")?;
            }
        }
        writeln!(f, "}}")
    }
}

fn write_matrix(f: &mut fmt::Formatter<'_>, m: &Matrix) -> fmt::Result {
    write!(
        f,
        "b{}[+{} rows*{} cols*{}",
        m.buffer, m.offset, m.row_stride, m.col_stride
    )?;
    if !m.batch_strides.is_empty() {
        write!(f, " batch*{:?}", m.batch_strides)?;
    }
    f.write_str("]")
}

fn write_dot(f: &mut fmt::Formatter<'_>, d: &DotKernel) -> fmt::Result {
    write!(f, "dot ")?;
    if !d.batch.is_empty() {
        write!(f, "{:?} x ", d.batch)?;
    }
    write!(f, "[{}x{}] x [{}x{}]: ", d.m, d.k, d.k, d.n)?;
    write_matrix(f, &d.a)?;
    f.write_str(" x ")?;
    write_matrix(f, &d.b)?;
    let added = match (d.accumulate, d.descend) {
        (_, Some(s)) => format!(" (times -b{s}, added)"),
        (true, None) => " (added)".to_string(),
        (false, None) => String::new(),
    };
    writeln!(f, " -> b{}{added}", d.out)
}

fn vars(k: &LoopKernel, vs: &[super::Var]) -> String {
    let parts: Vec<String> = vs
        .iter()
        .map(|&v| format!("v{v}<{}", k.extents[v as usize]))
        .collect();
    format!("[{}]", parts.join(", "))
}

fn write_loop(f: &mut fmt::Formatter<'_>, k: &LoopKernel) -> fmt::Result {
    write!(f, "loop outer={}", vars(k, &k.outer))?;
    if let Some(p) = k.parallel {
        write!(f, " parallel=v{p}")?;
    }
    writeln!(f, " {{")?;
    for (i, (e, dtype)) in k.exprs.iter().enumerate() {
        writeln!(f, "    e{i} = {} : {dtype}", expr(e))?;
    }
    for (i, s) in k.stages.iter().enumerate() {
        match &s.kind {
            StageKind::Reduce { op, value } => {
                let name = if *op == crate::op::ReduceOp::Sum {
                    "sum"
                } else {
                    "max"
                };
                writeln!(f, "    s{i}: {name} over {} of e{value}", vars(k, &s.vars))?;
            }
            StageKind::Store(stores) => {
                let stores: Vec<String> = stores
                    .iter()
                    .map(|st| format!("b{}[{}] = e{}", st.buffer, st.offset, st.value))
                    .collect();
                writeln!(
                    f,
                    "    s{i}: store over {}: {}",
                    vars(k, &s.vars),
                    stores.join(", ")
                )?;
            }
        }
    }
    writeln!(f, "  }}")
}

fn conds(cs: &[Cond]) -> String {
    let parts: Vec<String> = cs
        .iter()
        .map(|c| match c {
            Cond::Range { index, lo, hi } => format!("{lo} <= {index} < {hi}"),
            Cond::Multiple { index, of } => format!("{of} | {index}"),
        })
        .collect();
    parts.join(" && ")
}

fn expr(e: &Expr) -> String {
    let mut s = String::new();
    match e {
        Expr::Load {
            buffer,
            offset,
            guards,
        } => {
            let _ = write!(s, "load b{buffer}[{offset}]");
            if !guards.is_empty() {
                let _ = write!(s, " if {}", conds(guards));
            }
        }
        Expr::Const(v) => {
            let _ = crate::text::write_f64(&mut s, *v);
        }
        Expr::Index(i) => {
            let _ = write!(s, "index {i}");
        }
        Expr::Test(cs) => {
            let _ = write!(s, "test {}", conds(cs));
        }
        Expr::Random {
            stream,
            seed,
            index,
        } => {
            let _ = write!(s, "random stream={stream} seed=e{seed} at {index}");
        }
        Expr::Apply { op, args } => {
            let args: Vec<String> = args.iter().map(|a| format!("e{a}")).collect();
            let _ = write!(s, "{} {}", op.mnemonic(), args.join(", "));
        }
        Expr::Reduced(stage) => {
            let _ = write!(s, "reduced s{stage}");
        }
    }
    s
}

impl Kernel {
    /// One line naming the kernel's kind and what it writes, as `kiln dump --stage kernels`
    /// numbers buffers: `loop -> b5 f32[64,128]`, `dot 64x784x128 -> b4`. Profiles use it.
    pub fn summary(&self, p: &Program) -> String {
        let buffer = |b: u32| format!("b{b} {}", p.buffers[b as usize].ty);
        match self {
            Kernel::Loop(l) => {
                let stores: Vec<String> = (l.stages.iter())
                    .filter_map(|s| match &s.kind {
                        StageKind::Store(stores) => Some(stores),
                        StageKind::Reduce { .. } => None,
                    })
                    .flatten()
                    .map(|s| buffer(s.buffer))
                    .collect();
                format!("loop -> {}", stores.join(", "))
            }
            Kernel::Dot(d) => {
                let added = match (d.accumulate, d.descend) {
                    (_, Some(s)) => format!(" (times -b{s}, added)"),
                    (true, None) => " (added)".to_string(),
                    (false, None) => String::new(),
                };
                format!("dot {}x{}x{} -> {}{added}", d.m, d.k, d.n, buffer(d.out))
            }
            Kernel::Scatter(s) => format!("scatter_add -> {}", buffer(s.out)),
            Kernel::AllReduce(a) => {
                let outs: Vec<String> = a.pairs.iter().map(|&(_, o)| buffer(o)).collect();
                format!("all_reduce -> {}", outs.join(", "))
            }
        }
    }
}
