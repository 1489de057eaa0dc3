//! [`GraphBuilder`]: where a model's inputs, parameters and outputs are declared, and where
//! errors made while building it are collected.

use crate::init::Init;
use crate::model::Model;
use crate::tensor::Tensor;
use kiln_compiler::{
    Array, DType, Graph, GraphError, InputKind, NodeId, Op, Origin, Type, TypeError,
};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// Why a graph could not be built: the first mistake made while building it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// An op applied to operands it does not accept (a shape or dtype mismatch, a bad axis).
    Type(TypeError),
    /// An output, update or name the graph refuses.
    Graph {
        /// What the graph refused.
        error: GraphError,
        /// Where the user asked for it.
        origin: Origin,
    },
    /// Tensors of two different builders were combined.
    ForeignTensor {
        /// Where they were combined.
        origin: Origin,
    },
}

impl std::error::Error for BuildError {}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Type(e) => e.fmt(f),
            BuildError::Graph { error, origin } => write!(f, "{error} at {origin}"),
            BuildError::ForeignTensor { origin } => {
                write!(f, "tensors of two different graphs combined at {origin}")
            }
        }
    }
}

/// The graph under construction and the first error met, shared by the builder and its tensors.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) graph: Graph,
    pub(crate) error: Option<BuildError>,
    pub(crate) inits: Vec<(String, Init)>,
}

pub(crate) type Shared = Rc<RefCell<State>>;

impl State {
    /// Records `e` unless an earlier error is already recorded (the first one is reported).
    pub(crate) fn fail(&mut self, e: BuildError) {
        self.error.get_or_insert(e);
    }
}

/// Appends `op` on `operands` to the graph, or records why it cannot be and returns a poisoned
/// tensor. Operations on poisoned tensors give poisoned tensors and record nothing more, so the
/// first mistake is the one reported.
pub(crate) fn push(state: &Shared, op: Op, operands: &[&Tensor], origin: Origin) -> Tensor {
    let mut ids = smallvec::SmallVec::<[NodeId; 4]>::new();
    for t in operands {
        if !Rc::ptr_eq(&t.state, state) {
            state
                .borrow_mut()
                .fail(BuildError::ForeignTensor { origin });
            return Tensor::poisoned(state);
        }
        match t.id {
            Some(id) => ids.push(id),
            None => return Tensor::poisoned(state),
        }
    }
    let mut s = state.borrow_mut();
    match s.graph.add(op, &ids, Some(origin)) {
        Ok(id) => {
            let ty = s.graph.node(id).ty.clone();
            drop(s);
            Tensor::new(state, id, ty)
        }
        Err(e) => {
            s.fail(BuildError::Type(e));
            drop(s);
            Tensor::poisoned(state)
        }
    }
}

/// Builds a [`Graph`] from Rust code.
///
/// Declare inputs, parameters and state here, compute with the returned [`Tensor`]s, name the
/// outputs, and call [`GraphBuilder::finish`]. Every operation records the caller's source
/// location. A mistake (a shape mismatch, say) does not panic: the tensor it produces is
/// poisoned, later operations on it are skipped, and `finish` reports the first mistake with
/// its location.
#[derive(Debug)]
pub struct GraphBuilder {
    state: Shared,
}

impl GraphBuilder {
    /// A builder for a graph called `name`.
    pub fn new(name: impl Into<String>) -> GraphBuilder {
        GraphBuilder {
            state: Rc::new(RefCell::new(State {
                graph: Graph::new(name),
                error: None,
                inits: Vec::new(),
            })),
        }
    }

    /// Declares a data input, bound at every run (a batch, labels, a learning rate).
    #[track_caller]
    pub fn input(&self, name: &str, dtype: DType, shape: impl AsRef<[usize]>) -> Tensor {
        self.leaf_input(InputKind::Data, name, Type::new(dtype, shape))
    }

    /// Declares a trainable parameter.
    #[track_caller]
    pub fn param(&self, name: &str, dtype: DType, shape: impl AsRef<[usize]>) -> Tensor {
        self.leaf_input(InputKind::Param, name, Type::new(dtype, shape))
    }

    /// Declares a trainable parameter whose first value [`Model::initial_values`] draws from
    /// `init`.
    #[track_caller]
    pub fn param_init(
        &self,
        name: &str,
        dtype: DType,
        shape: impl AsRef<[usize]>,
        init: Init,
    ) -> Tensor {
        self.initialized(self.param(name, dtype, shape), name, init)
    }

    /// Declares state kept between runs that is not trained (optimizer moments, counters).
    #[track_caller]
    pub fn state(&self, name: &str, dtype: DType, shape: impl AsRef<[usize]>) -> Tensor {
        self.leaf_input(InputKind::State, name, Type::new(dtype, shape))
    }

    /// Declares state whose first value [`Model::initial_values`] draws from `init` (batch
    /// norm's running variance starts at 1, not 0).
    #[track_caller]
    pub fn state_init(
        &self,
        name: &str,
        dtype: DType,
        shape: impl AsRef<[usize]>,
        init: Init,
    ) -> Tensor {
        self.initialized(self.state(name, dtype, shape), name, init)
    }

    /// Records `init` as the initializer of the input `t` called `name` (unless declaring it
    /// failed).
    fn initialized(&self, t: Tensor, name: &str, init: Init) -> Tensor {
        if t.node().is_some() {
            self.state.borrow_mut().inits.push((name.to_string(), init));
        }
        t
    }

    #[track_caller]
    fn leaf_input(&self, kind: InputKind, name: &str, ty: Type) -> Tensor {
        let op = Op::Input {
            kind,
            name: name.into(),
            ty,
        };
        push(&self.state, op, &[], Origin::caller())
    }

    /// A constant tensor holding `value`.
    #[track_caller]
    pub fn constant(&self, value: Array) -> Tensor {
        push(&self.state, Op::Constant(value), &[], Origin::caller())
    }

    /// A scalar constant (shape `[]`) of `dtype`.
    #[track_caller]
    pub fn scalar(&self, value: f64, dtype: DType) -> Tensor {
        self.constant(Array::scalar(dtype, value))
    }

    /// A tensor of type `dtype[shape]` whose elements are their index along `axis`.
    #[track_caller]
    pub fn iota(&self, axis: usize, dtype: DType, shape: impl AsRef<[usize]>) -> Tensor {
        let op = Op::Iota {
            axis,
            ty: Type::new(dtype, shape),
        };
        push(&self.state, op, &[], Origin::caller())
    }

    /// Uniform random numbers in `[0, 1)` of type `dtype[shape]`: a pure function of the `seed`
    /// tensor (an `i32[]`, typically a data input that changes every step), `stream` and the
    /// element's position.
    #[track_caller]
    pub fn random(
        &self,
        seed: &Tensor,
        stream: u32,
        dtype: DType,
        shape: impl AsRef<[usize]>,
    ) -> Tensor {
        let op = Op::Random {
            stream,
            ty: Type::new(dtype, shape),
        };
        push(&self.state, op, &[seed], Origin::caller())
    }

    /// Names `t` as the graph output `name`.
    #[track_caller]
    pub fn output(&self, name: &str, t: &Tensor) {
        self.name_result(t, |g, id| g.set_output(name, id));
    }

    /// Declares that after a run the `param` or `state` called `name` takes the value of `t`.
    #[track_caller]
    pub fn update(&self, name: &str, t: &Tensor) {
        self.name_result(t, |g, id| g.set_update(name, id));
    }

    #[track_caller]
    fn name_result(
        &self,
        t: &Tensor,
        f: impl FnOnce(&mut Graph, NodeId) -> Result<(), GraphError>,
    ) {
        let origin = Origin::caller();
        let mut s = self.state.borrow_mut();
        if !Rc::ptr_eq(&t.state, &self.state) {
            s.fail(BuildError::ForeignTensor { origin });
            return;
        }
        let Some(id) = t.id else { return };
        if let Err(error) = f(&mut s.graph, id) {
            s.fail(BuildError::Graph { error, origin });
        }
    }

    /// The graph built so far, or the first error made while building it.
    pub fn finish(self) -> Result<Graph, BuildError> {
        self.finish_model().map(|m| m.graph)
    }

    /// The graph built so far with its parameters' initializers, or the first error made
    /// while building it.
    pub fn finish_model(self) -> Result<Model, BuildError> {
        let s = self.state.borrow();
        match &s.error {
            Some(e) => Err(e.clone()),
            None => Ok(Model {
                graph: s.graph.clone(),
                init: s.inits.clone(),
            }),
        }
    }
}
