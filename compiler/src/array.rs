//! Concrete tensors: the values the interpreter computes, constants hold and `.npy` files carry.

use crate::types::{DType, Shape, Type, numel};
use std::fmt;

/// The elements of an [`Array`], row-major, one vector per element type.
#[derive(Clone, Debug)]
pub enum Data {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `bool` elements.
    Bool(Vec<bool>),
}

impl Data {
    /// The element type of these elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I32(_) => DType::I32,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` copies of `value` converted to `dtype` (as [`Data::from_f64`] converts).
    pub fn splat(dtype: DType, value: f64, n: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![value as f32; n]),
            DType::F64 => Data::F64(vec![value; n]),
            DType::I32 => Data::I32(vec![value as i32; n]),
            DType::Bool => Data::Bool(vec![value != 0.0; n]),
        }
    }

    /// Elements of `dtype` converted from `f64` values: floats round, `i32` truncates toward
    /// zero and saturates (NaN becomes 0), `bool` is `v != 0`.
    pub fn from_f64(dtype: DType, values: impl IntoIterator<Item = f64>) -> Data {
        let it = values.into_iter();
        match dtype {
            DType::F32 => Data::F32(it.map(|v| v as f32).collect()),
            DType::F64 => Data::F64(it.collect()),
            DType::I32 => Data::I32(it.map(|v| v as i32).collect()),
            DType::Bool => Data::Bool(it.map(|v| v != 0.0).collect()),
        }
    }

    /// Element `i` as `f64` (`true` is 1, `false` 0). Panics if `i` is out of range.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Data::F32(v) => v[i] as f64,
            Data::F64(v) => v[i],
            Data::I32(v) => v[i] as f64,
            Data::Bool(v) => v[i] as u8 as f64,
        }
    }

    /// Every element as `f64`, in order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.get_f64(i)).collect()
    }

    /// The elements at `indices`, in that order; `None` takes `fill` converted to this type.
    /// Panics if an index is out of range: callers compute indices from static shapes.
    pub fn gather(&self, indices: impl Iterator<Item = Option<usize>>, fill: f64) -> Data {
        fn pick<T: Copy>(v: &[T], it: impl Iterator<Item = Option<usize>>, fill: T) -> Vec<T> {
            it.map(|i| i.map_or(fill, |i| v[i])).collect()
        }
        match self {
            Data::F32(v) => Data::F32(pick(v, indices, fill as f32)),
            Data::F64(v) => Data::F64(pick(v, indices, fill)),
            Data::I32(v) => Data::I32(pick(v, indices, fill as i32)),
            Data::Bool(v) => Data::Bool(pick(v, indices, fill != 0.0)),
        }
    }

    /// Copies element `j` of `src` (of the same element type) into element `i`. Panics if
    /// the types differ or an index is out of range.
    pub fn copy_element(&mut self, i: usize, src: &Data, j: usize) {
        match (self, src) {
            (Data::F32(a), Data::F32(b)) => a[i] = b[j],
            (Data::F64(a), Data::F64(b)) => a[i] = b[j],
            (Data::I32(a), Data::I32(b)) => a[i] = b[j],
            (Data::Bool(a), Data::Bool(b)) => a[i] = b[j],
            (a, b) => panic!(
                "cannot copy a {} element into {} data",
                b.dtype(),
                a.dtype()
            ),
        }
    }

    /// Bitwise equality: NaNs with the same bits are equal, `0.0` and `-0.0` are not.
    pub fn bits_eq(&self, other: &Data) -> bool {
        match (self, other) {
            (Data::F32(a), Data::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Data::F64(a), Data::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Data::I32(a), Data::I32(b)) => a == b,
            (Data::Bool(a), Data::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// A concrete tensor: a shape and its elements, row-major.
///
/// Invariant: `data.len() == numel(shape)`, kept by every constructor.
#[derive(Clone, Debug)]
pub struct Array {
    shape: Shape,
    data: Data,
}

/// The number of elements does not match the shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{len} elements do not fill the shape {shape:?} ({expected} elements)")]
pub struct ArrayLenError {
    /// Elements given.
    pub len: usize,
    /// The shape asked for.
    pub shape: Vec<usize>,
    /// Elements the shape holds.
    pub expected: usize,
}

impl Array {
    /// An array of `shape` holding `data`; fails when the element count differs.
    pub fn new(shape: impl AsRef<[usize]>, data: Data) -> Result<Array, ArrayLenError> {
        let shape = Shape::from_slice(shape.as_ref());
        let expected = numel(&shape);
        if data.len() != expected {
            return Err(ArrayLenError {
                len: data.len(),
                shape: shape.to_vec(),
                expected,
            });
        }
        Ok(Array { shape, data })
    }

    /// An array of `shape` whose elements all equal `value` converted to `dtype`.
    pub fn full(dtype: DType, shape: impl AsRef<[usize]>, value: f64) -> Array {
        let shape = Shape::from_slice(shape.as_ref());
        let data = Data::splat(dtype, value, numel(&shape));
        Array { shape, data }
    }

    /// A scalar (shape `[]`) of `dtype`.
    pub fn scalar(dtype: DType, value: f64) -> Array {
        Array::full(dtype, [], value)
    }

    /// An `f32` array; fails when the element count differs from the shape.
    pub fn from_f32(shape: impl AsRef<[usize]>, v: Vec<f32>) -> Result<Array, ArrayLenError> {
        Array::new(shape, Data::F32(v))
    }

    /// An `f64` array; fails when the element count differs from the shape.
    pub fn from_f64(shape: impl AsRef<[usize]>, v: Vec<f64>) -> Result<Array, ArrayLenError> {
        Array::new(shape, Data::F64(v))
    }

    /// An `i32` array; fails when the element count differs from the shape.
    pub fn from_i32(shape: impl AsRef<[usize]>, v: Vec<i32>) -> Result<Array, ArrayLenError> {
        Array::new(shape, Data::I32(v))
    }

    /// A `bool` array; fails when the element count differs from the shape.
    pub fn from_bool(shape: impl AsRef<[usize]>, v: Vec<bool>) -> Result<Array, ArrayLenError> {
        Array::new(shape, Data::Bool(v))
    }

    /// The extents, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The static type (element type and shape).
    pub fn ty(&self) -> Type {
        Type::new(self.dtype(), &self.shape)
    }

    /// The elements, row-major.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements, row-major, to change in place (the shape stays).
    pub fn data_mut(&mut self) -> &mut Data {
        &mut self.data
    }

    /// The elements, row-major, taking ownership.
    pub fn into_data(self) -> Data {
        self.data
    }

    /// The elements as an `f32` slice, if that is the element type.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as an `f64` slice, if that is the element type.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as an `i32` slice, if that is the element type.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            Data::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as a `bool` slice, if that is the element type.
    pub fn as_bool(&self) -> Option<&[bool]> {
        match &self.data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// Every element as `f64`, row-major.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.data.to_f64_vec()
    }

    /// Feeds the type and the bits of every element to `h` (equal arrays, NaN payloads and
    /// signed zeros included, hash alike), without copying the elements.
    pub fn hash_bits(&self, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        self.ty().to_string().hash(h);
        match &self.data {
            Data::F32(v) => v.iter().for_each(|x| h.write_u32(x.to_bits())),
            Data::F64(v) => v.iter().for_each(|x| h.write_u64(x.to_bits())),
            Data::I32(v) => v.iter().for_each(|&x| h.write_i32(x)),
            Data::Bool(v) => v.iter().for_each(|&x| h.write_u8(x.into())),
        }
    }

    /// The same elements with another shape of equal element count.
    pub fn reshape(self, shape: impl AsRef<[usize]>) -> Result<Array, ArrayLenError> {
        Array::new(shape, self.data)
    }

    /// The single element of an array that has one, as `f64`.
    pub fn scalar_value(&self) -> Option<f64> {
        (self.numel() == 1).then(|| self.data.get_f64(0))
    }
}

impl PartialEq for Array {
    /// Same shape and bitwise-equal elements (see [`Data::bits_eq`]).
    fn eq(&self, other: &Array) -> bool {
        self.shape == other.shape && self.data.bits_eq(&other.data)
    }
}

impl fmt::Display for Array {
    /// `f32[2,2] [1, 2, 3, 4]`: the type, then the elements row-major.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [", self.ty())?;
        for i in 0..self.numel() {
            if i > 0 {
                f.write_str(", ")?;
            }
            crate::text::write_scalar(f, &self.data, i)?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_check_the_element_count() {
        assert!(Array::from_f32([2, 2], vec![1.0; 4]).is_ok());
        let err = Array::from_f32([2, 3], vec![1.0; 4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "4 elements do not fill the shape [2, 3] (6 elements)"
        );
    }

    #[test]
    fn equality_is_bitwise() {
        let nan = Array::from_f32([1], vec![f32::NAN]).unwrap();
        assert_eq!(nan, nan.clone());
        let z = Array::from_f32([1], vec![0.0]).unwrap();
        let nz = Array::from_f32([1], vec![-0.0]).unwrap();
        assert_ne!(z, nz);
    }

    #[test]
    fn gather_fills_missing_positions() {
        let d = Data::I32(vec![10, 20, 30]);
        let g = d.gather([Some(2), None, Some(0)].into_iter(), -1.0);
        assert!(g.bits_eq(&Data::I32(vec![30, -1, 10])));
    }
}
