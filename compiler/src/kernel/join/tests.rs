use crate::kernel::{Kernel, Program, StageKind, bounds, eval, lower};
use crate::testing::{random_graph, random_inputs};
use crate::{Graph, interp, text};

/// The fused program of the `.kir` graph `src`, after checking that it is in bounds and that
/// it computes what the interpreter computes, bit for bit.
fn lowered(src: &str) -> Program {
    let g = text::parse(src).unwrap();
    let p = lower(&g, true);
    bounds::check(&p).unwrap();
    same_as_interpreter(&g, &p, 7);
    p
}

fn same_as_interpreter(g: &Graph, p: &Program, seed: u64) {
    let inputs = random_inputs(g, seed);
    let want = interp::run(g, &inputs).unwrap();
    let got = eval(p, &inputs);
    let pairs =
        (got.outputs.iter().zip(&want.outputs)).chain(got.updates.iter().zip(&want.updates));
    // Bit for bit, except that a NaN's payload and sign are unspecified (the project's rule;
    // they differ between debug and release builds of the interpreter itself).
    let bits = |x: &crate::Array| -> Vec<u64> {
        (x.to_f64_vec().iter())
            .map(|v| {
                if v.is_nan() {
                    f64::NAN.to_bits()
                } else {
                    v.to_bits()
                }
            })
            .collect()
    };
    for ((name, a), (_, b)) in pairs {
        assert!(
            a.ty() == b.ty() && bits(a) == bits(b),
            "{name} differs: {:?} vs {:?}\n{p}",
            a.to_f64_vec(),
            b.to_f64_vec()
        );
    }
}

/// A value two kernels need (costly enough for a buffer) joins both: they read it where it is
/// stored, so they use its expression, and its buffer goes.
#[test]
fn consumers_join_their_producer_and_its_buffer_goes() {
    let p = lowered(
        "graph chain {
          %x = input \"x\" : f32[4,32]
          %0 = exp %x : f32[4,32]
          %1 = tanh %0 : f32[4,32]
          %2 = add %1, %1 : f32[4,32]
          %3 = mul %1, %x : f32[4,32]
          output a = %2
          output b = %3
        }",
    );
    assert_eq!(
        p.to_string(),
        "program chain {
  b0 = input \"x\" : f32[4,32]
  b1 = temp : f32[4,32]
  b2 = temp : f32[4,32]
  k0 = loop outer=[] parallel=v0 {
    e0 = load b0[v0] : f32
    e1 = exp e0 : f32
    e2 = tanh e1 : f32
    e3 = add e2, e2 : f32
    e4 = mul e2, e0 : f32
    s0: store over [v0<128]: b1[v0] = e3, b2[v0] = e4
  }
  output a = b1
  output b = b2
}
"
    );
}

/// The kernels of a softmax and of another use of its row maximum share the loop over the
/// rows: the maximum (planned into a buffer, two kernels need it; rows of 32 are too long to
/// inline it) is the stage's result itself, and the scaled maximum is stored in the same outer
/// iteration.
#[test]
fn kernels_over_the_same_rows_share_the_outer_loop() {
    let p = lowered(
        "graph softmax {
          %x = input \"x\" : f32[4,32]
          %0 = reduce_max %x, axes=[1] : f32[4]
          %1 = reshape %0 : f32[4,1]
          %2 = broadcast %1 : f32[4,32]
          %3 = sub %x, %2 : f32[4,32]
          %4 = exp %3 : f32[4,32]
          %5 = reduce_sum %4, axes=[1] : f32[4]
          %6 = reshape %5 : f32[4,1]
          %7 = broadcast %6 : f32[4,32]
          %8 = div %4, %7 : f32[4,32]
          %9 = constant 2.0 : f32[]
          %10 = reshape %9 : f32[1]
          %11 = broadcast %10 : f32[4]
          %12 = mul %0, %11 : f32[4]
          output p = %8
          output m = %12
        }",
    );
    assert_eq!(
        p.to_string(),
        "program softmax {
  b0 = input \"x\" : f32[4,32]
  b1 = temp : f32[4,32]
  b2 = temp : f32[4]
  k0 = loop outer=[v0<4] parallel=v0 {
    e0 = load b0[v0*32 + v1] : f32
    e1 = reduced s0 : f32
    e2 = load b0[v0*32 + v2] : f32
    e3 = sub e2, e1 : f32
    e4 = exp e3 : f32
    e5 = load b0[v0*32 + v3] : f32
    e6 = sub e5, e1 : f32
    e7 = exp e6 : f32
    e8 = reduced s1 : f32
    e9 = div e4, e8 : f32
    e10 = 2.0 : f32
    e11 = mul e1, e10 : f32
    s0: max over [v1<32] of e0
    s1: sum over [v3<32] of e7
    s2: store over [v2<32]: b1[v0*32 + v2] = e9
    s3: store over []: b2[v0] = e11
  }
  output p = b1
  output m = b2
}
"
    );
}

/// A kernel reading another's result at other elements than those stored in the same
/// iteration (a transpose) stays a kernel of its own, and the value keeps its buffer.
#[test]
fn a_transposed_read_keeps_kernels_apart() {
    let p = lowered(
        "graph transpose {
          %x = input \"x\" : f32[4,4]
          %0 = exp %x : f32[4,4]
          %1 = tanh %0 : f32[4,4]
          %2 = permute %1, perm=[1,0] : f32[4,4]
          %3 = add %2, %x : f32[4,4]
          %4 = mul %1, %x : f32[4,4]
          output a = %3
          output b = %4
        }",
    );
    let loops = p.kernels.iter().filter(|k| matches!(k, Kernel::Loop(_)));
    assert_eq!(loops.count(), 2, "{p}");
    assert_eq!(p.buffers.len(), 4, "{p}");
}

/// Optimizer updates join into one kernel and stay in place: the parameter's new value uses
/// the new moment as computed, and each state is read only at the element written.
#[test]
fn joined_updates_stay_in_place() {
    let p = lowered(
        "graph step {
          %g = input \"g\" : f32[16]
          %m = state \"m\" : f32[16]
          %w = param \"w\" : f32[16]
          %0 = constant 0.5 : f32[]
          %1 = reshape %0 : f32[1]
          %2 = broadcast %1 : f32[16]
          %3 = mul %m, %2 : f32[16]
          %4 = add %3, %g : f32[16]
          %5 = sub %w, %4 : f32[16]
          update m <- %4
          update w <- %5
        }",
    );
    assert_eq!(
        p.to_string(),
        "program step {
  b0 = input \"g\" : f32[16]
  b1 = state \"m\" : f32[16]
  b2 = state \"w\" : f32[16]
  k0 = loop outer=[] parallel=v0 {
    e0 = load b1[v0] : f32
    e1 = 0.5 : f32
    e2 = mul e0, e1 : f32
    e3 = load b0[v0] : f32
    e4 = add e2, e3 : f32
    e5 = load b2[v0] : f32
    e6 = sub e5, e4 : f32
    s0: store over [v0<16]: b1[v0] = e4, b2[v0] = e6
  }
  update m in place (b1)
  update w in place (b2)
}
"
    );
}

/// Adam's update of a parameter is one kernel: the per-step bias corrections (a kernel of one
/// point, as the parameter is large enough for them to get a buffer) move out from between the
/// moments' update and the parameter's.
#[test]
fn an_adam_update_is_one_kernel() {
    let model = text::parse(
        "graph model {
          %x = input \"x\" : f32[256,512]
          %w = param \"w\" : f32[256,512]
          %0 = mul %w, %x : f32[256,512]
          %1 = reduce_sum %0, axes=[0, 1] : f32[]
          output loss = %1
        }",
    )
    .unwrap();
    let adam = crate::optim::Optimizer::adam(1e-3);
    let g = crate::train::train_step(&model, "loss", &adam).unwrap();
    let p = lower(&g, true);
    bounds::check(&p).unwrap();
    same_as_interpreter(&g, &p, 3);
    let state = |name: &str| {
        (p.buffers.iter())
            .position(|b| b.role == crate::kernel::Role::State(name.into()))
            .unwrap() as u32
    };
    let updated = [state("w"), state("w.m"), state("w.v")];
    let writers: Vec<&Kernel> = (p.kernels.iter())
        .filter(|k| updated.iter().any(|b| k.writes().contains(b)))
        .collect();
    assert_eq!(writers.len(), 1, "{p}");
}

/// Random graphs join kernels (their outputs and updates are often of one shape), and the
/// joined programs compute what the graphs compute.
#[test]
fn random_graphs_join_kernels_and_compute_the_same() {
    let mut joined = 0;
    for seed in 0..400 {
        let g = random_graph(seed, 30);
        // The evaluator multiplies `i32` matrices in `f64`, where the interpreter wraps.
        let int_dot = g.node_ids().any(|id| {
            let n = g.node(id);
            matches!(n.op, crate::op::Op::Dot) && n.ty.dtype == crate::types::DType::I32
        });
        if int_dot {
            continue;
        }
        let p = lower(&g, true);
        bounds::check(&p).unwrap();
        same_as_interpreter(&g, &p, seed);
        let stores = |k: &Kernel| match k {
            Kernel::Loop(l) => (l.stages.iter())
                .filter(|s| matches!(s.kind, StageKind::Store(_)))
                .count(),
            _ => 0,
        };
        let writes = |k: &Kernel| k.writes().len();
        joined += p.kernels.iter().any(|k| writes(k) > 1 || stores(k) > 1) as usize;
    }
    assert!(joined >= 40, "only {joined} programs of 400 join kernels");
}
