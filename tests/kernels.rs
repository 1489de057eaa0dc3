//! Fusion computes what the graph computes: programs lowered from the built-in training steps,
//! fused and unfused, evaluated by the kernel-IR evaluator, equal the interpreter's results.
//! And it decides well: what it keeps in buffers, and how kernels index them.

mod common;

use kiln::compiler::kernel::{
    Atom, Cond, Expr, Index, Kernel, LoopKernel, Program, StageKind, eval, lower,
    lower_from_scratch,
};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::{gradients, train_step};
use kiln::compiler::{DType, Graph, interp};
use kiln::frontend::GraphBuilder;
use kiln::frontend::layers::{Conv2d, Layers, Mode};

fn check(g: &Graph, fuse: bool) -> String {
    let p = lower(g, fuse);
    let values = common::training_inputs(g, 3);
    let want = interp::run(g, &values).unwrap();
    let got = eval(&p, &values);
    assert_eq!(
        got.outputs, want.outputs,
        "outputs differ (fuse: {fuse})\n{p}"
    );
    assert_eq!(
        got.updates, want.updates,
        "updates differ (fuse: {fuse})\n{p}"
    );
    p.to_string()
}

#[test]
fn mlp_train_steps_lower_to_programs_that_compute_the_same() {
    let m = kiln::frontend::models::mlp(8, &[12, 6, 4]).unwrap();
    for opt in [Optimizer::sgd(0.1), Optimizer::adam(1e-3)] {
        let g = train_step(&m.graph, "loss", &opt).unwrap();
        let fused = check(&g, true);
        let unfused = check(&g, false);
        if opt.name() == "sgd" {
            println!("{fused}");
        }
        assert!(fused.matches("  k").count() < unfused.matches("  k").count());
    }
}

/// The loop kernels of a program.
fn loops(p: &Program) -> impl Iterator<Item = &LoopKernel> {
    p.kernels.iter().filter_map(|k| match k {
        Kernel::Loop(l) => Some(l),
        _ => None,
    })
}

/// Divisions and remainders in an index, its atoms' own included.
fn divisions(i: &Index) -> usize {
    i.terms
        .iter()
        .map(|(_, a)| match a {
            Atom::Div(inner, _) | Atom::Mod(inner, _) => 1 + divisions(inner),
            Atom::Var(_) | Atom::Data { .. } => 0,
        })
        .sum()
}

/// Divisions and remainders in every index a program's loop kernels compute.
fn program_divisions(p: &Program) -> usize {
    let cond = |c: &Cond| match c {
        Cond::Range { index, .. } | Cond::Multiple { index, .. } => divisions(index),
    };
    loops(p)
        .map(|k| {
            let exprs: usize = k
                .exprs
                .iter()
                .map(|(e, _)| match e {
                    Expr::Load { offset, guards, .. } => {
                        divisions(offset) + guards.iter().map(cond).sum::<usize>()
                    }
                    Expr::Index(i) | Expr::Random { index: i, .. } => divisions(i),
                    Expr::Test(cs) => cs.iter().map(cond).sum(),
                    _ => 0,
                })
                .sum();
            let stores: usize = k
                .stages
                .iter()
                .filter_map(|s| match &s.kind {
                    StageKind::Store(st) => {
                        Some(st.iter().map(|x| divisions(&x.offset)).sum::<usize>())
                    }
                    StageKind::Reduce { .. } => None,
                })
                .sum::<usize>();
            exprs + stores
        })
        .sum()
}

/// An LSTM's training step over `steps` steps: its cell state is needed by the next step's
/// kernel and by the backward pass, so fusion keeps it in a buffer, and the program grows in
/// proportion to the sequence (recomputing each step's cell state from the first step, as it
/// once did, made it grow with the square: 2.9 times the expressions for twice the steps at 8
/// steps, and 7.6 s to compile the 28 steps of the built-in model in a debug build).
#[test]
fn a_recurrence_lowers_to_a_program_linear_in_its_length() {
    let size = |steps: usize| {
        let b = GraphBuilder::new("lstm");
        let nn = Layers::new(&b, Mode::Train);
        let x = b.input("x", DType::F32, [2, steps, 3]);
        b.output("loss", &nn.lstm("lstm", &x, 4).hidden.sum_all());
        let g = train_step(&b.finish().unwrap(), "loss", &Optimizer::sgd(0.1)).unwrap();
        let p = lower(&g, true);
        check(&g, true);
        loops(&p).map(|k| k.exprs.len()).sum::<usize>() as f64
    };
    let (short, long) = (size(8), size(16));
    assert!(
        long < 2.2 * short,
        "{short} expressions for 8 steps, {long} for 16"
    );
}

/// A reduction two kernels need is computed once, into a buffer: the row maximum of a softmax
/// that another output uses too.
#[test]
fn a_reduction_two_kernels_need_gets_a_buffer() {
    let b = GraphBuilder::new("softmax");
    let x = b.input("x", DType::F32, [8, 100]);
    let m = x.max_keepdims(&[1]);
    let e = (&x - &m).exp();
    b.output("p", &(&e / e.sum_keepdims(&[1])));
    b.output("m", &(m * 2.0));
    let g = b.finish().unwrap();
    let p = lower(&g, true);
    check(&g, true);
    let max_stages = loops(&p)
        .flat_map(|k| &k.stages)
        .filter(|s| {
            matches!(
                s.kind,
                StageKind::Reduce {
                    op: kiln::compiler::ReduceOp::Max,
                    ..
                }
            )
        })
        .count();
    assert_eq!(max_stages, 1, "{p}");
}

/// A per-channel sum that one kernel over batch and channel needs (a batch norm's mean) is
/// computed once per channel, into a buffer: inlined, the kernel's batch loop would compute
/// each channel's sum again for every image.
#[test]
fn a_reduction_an_outer_loop_would_repeat_gets_a_buffer() {
    let b = GraphBuilder::new("centered");
    let x = b.input("x", DType::F32, [16, 4, 10, 10]);
    b.output("y", &(&x - &(x.sum_keepdims(&[0, 2, 3]) * 0.01)));
    let g = b.finish().unwrap();
    let p = lower(&g, true);
    check(&g, true);
    let sums: Vec<&LoopKernel> = loops(&p)
        .filter(|k| {
            k.stages
                .iter()
                .any(|s| matches!(s.kind, StageKind::Reduce { .. }))
        })
        .collect();
    // The sum's kernel loops over the channels only.
    let [sum] = sums.as_slice() else {
        panic!("{p}");
    };
    let outer: i64 = sum.outer.iter().map(|&v| sum.extents[v as usize]).product();
    assert_eq!(outer, 4, "{p}");
}

/// Of two values that two kernels need, the second computed from the first through a
/// transposition only, the second alone gets a buffer: the kernels read the first through it,
/// and computing the second computes each element of the first once. (A pooling gradient laid
/// out as windows and put back in image order, both masked, is such a pair.)
#[test]
fn a_chain_through_a_transposition_gets_one_buffer() {
    let b = GraphBuilder::new("chain");
    let x = b.input("x", DType::F32, [4, 6]);
    let first = (x.exp() + 1.0) * &x;
    let second = first.permute(&[1, 0]).exp() * 2.0;
    b.output("sum", &second.sum(&[1]));
    b.output("max", &second.max(&[0]));
    let g = b.finish().unwrap();
    let p = lower(&g, true);
    check(&g, true);
    // Besides the two outputs (vectors), one matrix: the second value.
    let matrices: Vec<&[usize]> = (p.buffers.iter())
        .filter(|b| matches!(b.role, kiln::compiler::kernel::Role::Temp))
        .map(|b| b.ty.shape.as_slice())
        .filter(|shape| shape.len() == 2)
        .collect();
    assert_eq!(matrices, [&[6usize, 4][..]], "{p}");
}

/// A concatenation two kernels need is computed once, into a buffer: inlined, each kernel
/// would compute all four operands at every element.
#[test]
fn a_concatenation_two_kernels_need_gets_a_buffer() {
    let b = GraphBuilder::new("concat");
    let parts: Vec<_> = (0..4)
        .map(|i| b.input(&format!("x{i}"), DType::F32, [8, 3]).exp())
        .collect();
    let refs: Vec<_> = parts.iter().collect();
    let cat = refs[0].concat(&refs[1..], 1);
    b.output("sum", &cat.sum(&[1]));
    b.output("max", &cat.max(&[0]));
    let g = b.finish().unwrap();
    let p = lower(&g, true);
    check(&g, true);
    let exps = loops(&p)
        .flat_map(|k| &k.exprs)
        .filter(|(e, _)| {
            matches!(
                e,
                Expr::Apply {
                    op: kiln::compiler::Op::Unary(kiln::compiler::UnaryOp::Exp),
                    ..
                }
            )
        })
        .count();
    assert_eq!(exps, 4, "{p}");
}

/// The im2col matrix of a padded convolution, and its gradient's col2im sum, index their
/// buffers without a division: the matrix's kernel loops over the window view's axes (not
/// the matrix's two), and reshapes that only add or drop axes of extent 1 map the others'
/// indices unchanged, even shifted by padding.
#[test]
fn convolution_kernels_divide_no_index() {
    let b = GraphBuilder::new("conv");
    let nn = Layers::new(&b, Mode::Train);
    let x = b.input("x", DType::F32, [2, 3, 8, 8]);
    let y = nn.conv2d("c", &x, Conv2d::new(4, 3).padding(1));
    b.output("loss", &y.sum_all());
    let g = gradients(&b.finish().unwrap(), "loss", &["x", "c.w", "c.b"]).unwrap();
    for fuse in [true, false] {
        check(&g, fuse);
        let p = lower(&g, fuse);
        assert_eq!(program_divisions(&p), 0, "fuse={fuse}\n{p}");
    }
}

/// A convolution's padded input gets a buffer of its own: each element is read by up to 9
/// windows, and the kernel writing the im2col matrix then reads it with plain loads; only the
/// kernel writing the padded copy tests the padding (and computes the ReLU, once).
#[test]
fn a_padded_input_of_overlapping_windows_gets_a_buffer() {
    let b = GraphBuilder::new("conv");
    let nn = Layers::new(&b, Mode::Train);
    let x = b.input("x", DType::F32, [2, 3, 8, 8]);
    let y = nn.conv2d("c", &x.relu(), Conv2d::new(4, 3).padding(1));
    b.output("y", &y);
    let g = b.finish().unwrap();
    check(&g, true);
    let p = lower(&g, true);
    let guarded: Vec<usize> = loops(&p)
        .map(|k| {
            let loads = k
                .exprs
                .iter()
                .filter(|(e, _)| matches!(e, Expr::Load { guards, .. } if !guards.is_empty()));
            loads.count()
        })
        .collect();
    assert_eq!(guarded.iter().sum::<usize>(), 1, "{p}");
    let relus = loops(&p).flat_map(|k| &k.exprs).filter(|(e, _)| {
        matches!(
            e,
            Expr::Apply {
                op: kiln::compiler::Op::Binary(kiln::compiler::BinaryOp::Max),
                ..
            }
        )
    });
    assert_eq!(relus.count(), 1, "{p}");
}

/// A kernel whose outer loops start with one of extent 1 (a single input channel) splits the
/// next loop across threads.
#[test]
fn the_parallel_loop_skips_loops_of_extent_one() {
    let b = GraphBuilder::new("unit");
    let x = b.input("x", DType::F32, [1, 64, 100]);
    b.output("y", &x.sum(&[2]));
    let g = b.finish().unwrap();
    let p = lower(&g, true);
    let k = loops(&p).next().unwrap();
    assert_eq!(k.outer.len(), 2, "{p}");
    let v = k.parallel.expect("a parallel loop");
    assert_eq!(k.extents[v as usize], 64, "{p}");
}

/// Loops that every index walks as one merge: the rows and columns of a batch of images
/// become one loop of 784 (vectorized), in an elementwise kernel and in the stage of a
/// per-channel reduction (batch norm's mean); a padded read of the rows keeps them apart; a
/// loop of extent 1 merges whatever the indices (a transposed read here, its lanes gathered).
#[test]
fn contiguous_loops_merge() {
    use kiln::compiler::codegen::describe_loops;
    let b = GraphBuilder::new("merge");
    let x = b.input("x", DType::F32, [8, 3, 28, 28]);
    b.output("y", &x.exp());
    b.output("mean", &x.mean(&[0, 2, 3]));
    b.output("pad", &x.pad(&[0, 0, 0, 1], &[0, 0, 0, 1], 0.0));
    let t = b.input("t", DType::F32, [1, 64, 100]);
    b.output("t", &t.permute(&[0, 2, 1]).exp());
    let g = b.finish().unwrap();
    check(&g, true);
    let loops = describe_loops(&lower(&g, true));
    assert!(
        loops.contains("for v0 in 0..18816 (split across threads) by 4 lanes"),
        "{loops}"
    );
    assert!(loops.contains("for v2 in 0..784 by 4 lanes"), "{loops}");
    assert!(loops.contains("for v3 in 0..30 by 4 lanes"), "{loops}");
    // The transposed read gathers its lanes from four columns.
    assert!(
        loops.contains(
            "1 load(s) gathered across lanes\n    for v0 in 0..100 (split across threads)\n      \
             for v2 in 0..64 by 4 lanes"
        ),
        "{loops}"
    );
}

/// A transposed weight that several products take as their right operand (a recurrent
/// weight in every backward step) is copied once, row-major, and each product reads the copy;
/// a transpose only one product takes is read through its view.
#[test]
fn a_transpose_several_products_take_is_copied_once() {
    let b = GraphBuilder::new("transposes");
    let w = b.input("w", DType::F32, [6, 10]);
    let once = b.input("once", DType::F32, [6, 10]);
    let wt = w.permute(&[1, 0]);
    let dy: Vec<_> = (0..3)
        .map(|i| b.input(&format!("dy{i}"), DType::F32, [3, 10]))
        .collect();
    let mut sum = dy[0].matmul(&wt);
    for d in &dy[1..] {
        sum = sum.add(&d.matmul(&wt).tanh());
    }
    b.output("dx", &sum.add(&dy[0].matmul(&once.permute(&[1, 0]))));
    let g = b.finish().unwrap();
    check(&g, false);
    let p = check(&g, true);
    let prog = lower(&g, true);
    let row_major = (prog.kernels.iter())
        .filter(|k| matches!(k, Kernel::Dot(d) if d.b.row_stride == 6 && d.b.col_stride == 1))
        .count();
    let viewed = (prog.kernels.iter())
        .filter(|k| matches!(k, Kernel::Dot(d) if d.b.row_stride == 1 && d.b.col_stride == 10))
        .count();
    assert_eq!((row_major, viewed), (3, 1), "{p}");
}

/// An SGD step `w - lr * g` whose gradient is one matrix product is taken by the product
/// itself (it adds `-lr` times its product to `w` in place), bit for bit what the graph
/// computes; a weight that is also an output is still stepped by its product, the output
/// being the copy made before any kernel runs (the old value, as the interpreter has it).
#[test]
fn a_descent_step_is_taken_by_its_gradient_product() {
    let m = kiln::frontend::models::mlp(8, &[12, 6, 4]).unwrap();
    let g = train_step(&m.graph, "loss", &Optimizer::sgd(0.1)).unwrap();
    check(&g, true);
    let descents = |g: &Graph| {
        (lower(g, true).kernels.iter())
            .filter(|k| matches!(k, Kernel::Dot(d) if d.descend.is_some()))
            .count()
    };
    assert_eq!(descents(&g), 2);
    let mut shown = g.clone();
    let w = shown.input("fc1.w").unwrap();
    shown.set_output("w", w).unwrap();
    check(&shown, true);
    assert_eq!(descents(&shown), 2);
}

/// Planning restarts whenever it materializes one more value, and reuses the loop kernels of
/// earlier attempts that inline none of the values materialized since: the program is the one
/// planned from scratch at every restart, for every built-in's training step (the larger
/// image models on 3x8x8 images: ResNet-18's restarts some seventy times), fused and not.
#[test]
fn reusing_kernels_across_planning_restarts_changes_no_program() {
    use kiln::frontend::models::{BUILTINS, Settings, builtin};
    for name in BUILTINS {
        let input = match *name {
            "vgg" | "resnet18" => vec![3, 8, 8],
            _ => vec![1, 28, 28],
        };
        let settings = Settings {
            batch: 4,
            input,
            ..Settings::default()
        };
        let m = builtin(name, &settings).unwrap().unwrap();
        let g = train_step(&m.graph, "loss", &Optimizer::adam(1e-3)).unwrap();
        for fuse in [true, false] {
            assert!(
                lower(&g, fuse) == lower_from_scratch(&g, fuse),
                "{name} fuse={fuse}"
            );
        }
    }
}

/// Every matrix product of a fused program runs right after the last kernel it depends on,
/// so what it is the last to read (a convolution's im2col matrix, read by its weight
/// gradient) is freed as early as it can be: in the `vgg` built-in's SGD step, only products
/// moved up the same way stand between a product and the last earlier kernel that writes
/// what it reads, or reads or writes what it writes.
#[test]
fn matrix_products_run_as_soon_as_their_operands_are_ready() {
    use kiln::frontend::models::{Settings, builtin};
    let settings = Settings {
        batch: 4,
        input: vec![3, 8, 8],
        ..Settings::default()
    };
    let m = builtin("vgg", &settings).unwrap().unwrap();
    let g = train_step(&m.graph, "loss", &Optimizer::sgd(0.1)).unwrap();
    let p = lower(&g, true);
    let meets = |x: &[u32], y: &[u32]| x.iter().any(|b| y.contains(b));
    let depends = |k: &Kernel, on: &Kernel| {
        let (r, w) = (on.reads(), on.writes());
        meets(&w, &k.reads()) || meets(&r, &k.writes()) || meets(&w, &k.writes())
    };
    let mut products = 0;
    for (i, k) in p.kernels.iter().enumerate() {
        if !matches!(k, Kernel::Dot(_)) {
            continue;
        }
        products += 1;
        let last = (0..i).rev().find(|&j| depends(k, &p.kernels[j]));
        let between = last.map_or(0, |j| j + 1)..i;
        assert!(
            p.kernels[between]
                .iter()
                .all(|b| matches!(b, Kernel::Dot(_))),
            "product k{i} could run earlier\n{p}"
        );
    }
    assert!(products >= 10, "{p}");
}
