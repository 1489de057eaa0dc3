//! Element types, shapes and tensor types: what every node of a graph carries.

use smallvec::SmallVec;
use std::fmt;

/// A static shape: one extent per axis, outermost first. `[]` is a scalar.
pub type Shape = SmallVec<[usize; 4]>;

/// A list of axis numbers (a reduction's axes, a permutation).
pub type Axes = SmallVec<[usize; 4]>;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float (gradient checks run in it).
    F64,
    /// 32-bit signed integer (labels, indices, counters).
    I32,
    /// Boolean (the result of a comparison, the condition of a select).
    Bool,
}

impl DType {
    /// Every element type, in the order the text form lists them.
    pub const ALL: [DType; 4] = [DType::F32, DType::F64, DType::I32, DType::Bool];

    /// The spelling in the text form: `f32`, `f64`, `i32`, `bool`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::Bool => "bool",
        }
    }

    /// The element type spelled `name` in the text form, if any.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// True for `f32` and `f64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// True for the types arithmetic is defined on: floats and `i32`.
    pub fn is_numeric(self) -> bool {
        self != DType::Bool
    }

    /// Bytes one element occupies in memory.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The static type of a tensor: element type and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Type {
    /// Element type.
    pub dtype: DType,
    /// Extents, outermost first.
    pub shape: Shape,
}

impl Type {
    /// A tensor type from an element type and any list of extents.
    pub fn new(dtype: DType, shape: impl AsRef<[usize]>) -> Type {
        Type {
            dtype,
            shape: Shape::from_slice(shape.as_ref()),
        }
    }

    /// The scalar type of `dtype` (shape `[]`).
    pub fn scalar(dtype: DType) -> Type {
        Type::new(dtype, [])
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
}

impl fmt::Display for Type {
    /// `f32[64,784]`; a scalar prints as `f32[]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, DisplayShape(&self.shape))
    }
}

/// Displays a list of extents or axes as `[64,784]`, the way the text form and errors spell them.
pub struct DisplayShape<'a>(pub &'a [usize]);

impl fmt::Display for DisplayShape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// Number of elements of a shape (1 for a scalar); saturates instead of overflowing.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Shape {
    let mut s: Shape = smallvec::smallvec![0; shape.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("f16"), None);
    }

    #[test]
    fn types_print_like_the_text_form() {
        assert_eq!(Type::new(DType::F32, [64, 784]).to_string(), "f32[64,784]");
        assert_eq!(Type::scalar(DType::I32).to_string(), "i32[]");
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(strides(&[2, 3, 4]).as_slice(), &[12, 4, 1]);
        assert_eq!(strides(&[]).as_slice(), &[] as &[usize]);
        assert_eq!(numel(&[2, 3, 4]), 24);
        assert_eq!(numel(&[]), 1);
    }
}
