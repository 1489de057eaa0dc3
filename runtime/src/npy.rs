//! `.npy` files: reading and writing [`kiln_compiler::Array`]s.
//!
//! Supported element types: `f32` (`<f4`), `f64` (`<f8`), `i32` (`<i4`) and `bool` (`|b1`),
//! read as they are; and the other integer types, `|i1`, `<i2`, `<i8`, `|u1`, `<u2`, `<u4` and
//! `<u8`, read as `i32` (numpy saves integer labels as `<i8` by default), each value checked:
//! one outside `i32`'s range is refused ([`NpyError::OutOfRange`], naming its flat index).
//! Big-endian files (`>f4`, `>i8`, ...) are read and converted. Only C order is read.
//!
//! The header is parsed here rather than by npyz: npyz multiplies the extents unchecked and
//! allocates the header's claimed length before comparing it with the file, so a hostile header
//! could make it panic or allocate gigabytes. Here a header is refused, before anything is
//! allocated, when it claims more than [`MAX_ELEMENTS`] elements or more bytes than the file
//! holds. Elements are decoded and encoded by npyz.
//!
//! Writes are atomic (module `atomic`): a temporary file in the destination's directory is
//! written, synced and renamed over the destination, so a reader sees the old file or the new
//! one, never a part.

mod header;

use crate::atomic::{self, Staged, Step};
use header::Header;
use kiln_compiler::{Array, DType, Data};
use npyz::{AutoSerialize, Deserialize, TypeRead, TypeStr, WriteOptions, WriterBuilder};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The most elements a file may claim (2^31); a header claiming more is refused unread. Empty
/// axes do not lower the count: the product of the extents, each counted as at least 1, must
/// stay within the limit, so no partial product can overflow.
pub const MAX_ELEMENTS: u64 = 1 << 31;

/// Why a `.npy` file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened or read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is not an npy file, or its header or elements are malformed.
    #[error("`{}` is not a valid npy file: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// The element type is not one kiln has.
    #[error(
        "`{}` has dtype `{dtype}`; kiln reads <f4, <f8, <i4 and |b1, and |i1, <i2, <i8, |u1, <u2, \
         <u4 and <u8 as i32 (and their big-endian forms)",
        path.display()
    )]
    UnsupportedDType {
        /// The file.
        path: PathBuf,
        /// The dtype as the header spells it.
        dtype: String,
    },
    /// The elements are stored column-major.
    #[error(
        "`{}` is in Fortran order; only C order is supported (save it with np.ascontiguousarray)",
        path.display()
    )]
    FortranOrder {
        /// The file.
        path: PathBuf,
    },
    /// The header claims more than [`MAX_ELEMENTS`] elements.
    #[error("`{}` claims shape {shape:?}, more than 2^31 elements", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The shape the header claims.
        shape: Vec<u64>,
    },
    /// An integer element does not fit in `i32`, the one integer type kiln has.
    #[error(
        "`{}` holds {value} at flat index {index}, outside the range of i32 (kiln reads integers \
         as i32)",
        path.display()
    )]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The element's index in C order.
        index: u64,
        /// The value, as written in decimal.
        value: String,
    },
    /// The file ends before the data its header promises.
    #[error(
        "`{}` is truncated: its header promises {expected} bytes, the file holds {found}",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the file would hold with all the data its header promises.
        expected: u64,
        /// Bytes the file holds.
        found: u64,
    },
    /// The file could not be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

/// Reads the array stored in the `.npy` file at `path`.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Array, NpyError> {
    let path = path.as_ref();
    let read_err = |source| NpyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let file_len = file.metadata().map_err(read_err)?.len();
    read_from(&mut BufReader::new(file), file_len, path)
}

/// Reads the array stored in `bytes`, the contents of an `.npy` file; errors name the file as
/// `origin`. Checks and errors are [`read_npy`]'s.
pub fn read_npy_bytes(bytes: &[u8], origin: impl AsRef<Path>) -> Result<Array, NpyError> {
    read_from(&mut &bytes[..], bytes.len() as u64, origin.as_ref())
}

/// Reads the array from `r`, at the start of an `.npy` file of `file_len` bytes at `path`.
fn read_from(r: &mut impl Read, file_len: u64, path: &Path) -> Result<Array, NpyError> {
    let read_err = |source| NpyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let header = Header::read(r, file_len).map_err(|e| e.at(path))?;
    let Some((stored, ts)) = (header.type_str.as_ref()).and_then(|ts| Some((Stored::of(ts)?, ts)))
    else {
        return Err(NpyError::UnsupportedDType {
            path: path.to_path_buf(),
            dtype: header.descr,
        });
    };
    if header.fortran_order {
        return Err(NpyError::FortranOrder {
            path: path.to_path_buf(),
        });
    }
    let n = header
        .shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d.max(1)));
    if n.is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(NpyError::TooLarge {
            path: path.to_path_buf(),
            shape: header.shape,
        });
    }
    let numel: u64 = header.shape.iter().product();
    let expected = header.len + numel * stored.size();
    if expected > file_len {
        return Err(NpyError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: file_len,
        });
    }
    let shape: Vec<usize> = header.shape.iter().map(|&d| d as usize).collect();
    let data = read_data(r, stored, ts, numel as usize).map_err(|e| match e {
        Fail::Io(e) if e.kind() == io::ErrorKind::InvalidData => NpyError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        Fail::Io(e) => read_err(e),
        Fail::OutOfRange { index, value } => NpyError::OutOfRange {
            path: path.to_path_buf(),
            index,
            value,
        },
    })?;
    Array::new(shape, data).map_err(|e| NpyError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// How a file stores its elements: as a kiln element type, or as an integer type read as `i32`.
#[derive(Clone, Copy, Debug)]
enum Stored {
    /// Read as they are.
    Native(DType),
    /// An integer type other than `i32`, of `bytes` bytes, converted value by value.
    Int { signed: bool, bytes: u8 },
}

impl Stored {
    /// What an npy type string stands for, in either byte order; `None` for a type kiln does
    /// not read.
    fn of(ts: &TypeStr) -> Option<Stored> {
        use npyz::TypeChar::{Bool, Float, Int, Uint};
        Some(match (ts.type_char(), ts.size_field()) {
            (Float, 4) => Stored::Native(DType::F32),
            (Float, 8) => Stored::Native(DType::F64),
            (Int, 4) => Stored::Native(DType::I32),
            (Bool, 1) => Stored::Native(DType::Bool),
            (Int, bytes @ (1 | 2 | 8)) => Stored::Int {
                signed: true,
                bytes: bytes as u8,
            },
            (Uint, bytes @ (1 | 2 | 4 | 8)) => Stored::Int {
                signed: false,
                bytes: bytes as u8,
            },
            _ => return None,
        })
    }

    /// Bytes per element in the file.
    fn size(self) -> u64 {
        match self {
            Stored::Native(dtype) => dtype.size_bytes() as u64,
            Stored::Int { bytes, .. } => u64::from(bytes),
        }
    }
}

/// Why the elements could not be read.
enum Fail {
    /// The reader failed, or npyz refused the type (`InvalidData`).
    Io(io::Error),
    /// An integer does not fit in `i32`.
    OutOfRange { index: u64, value: String },
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// The `n` elements that follow the header, stored as `stored` (type string `ts`).
fn read_data(r: &mut impl Read, stored: Stored, ts: &TypeStr, n: usize) -> Result<Data, Fail> {
    Ok(match stored {
        Stored::Native(DType::F32) => Data::F32(read_elements(r, ts, n)?),
        Stored::Native(DType::F64) => Data::F64(read_elements(r, ts, n)?),
        Stored::Native(DType::I32) => Data::I32(read_elements(r, ts, n)?),
        Stored::Native(DType::Bool) => Data::Bool(read_elements(r, ts, n)?),
        Stored::Int { signed, bytes } => Data::I32(match (signed, bytes) {
            (true, 1) => read_ints::<i8>(r, ts, n)?,
            (true, 2) => read_ints::<i16>(r, ts, n)?,
            (true, _) => read_ints::<i64>(r, ts, n)?,
            (false, 1) => read_ints::<u8>(r, ts, n)?,
            (false, 2) => read_ints::<u16>(r, ts, n)?,
            (false, 4) => read_ints::<u32>(r, ts, n)?,
            (false, _) => read_ints::<u64>(r, ts, n)?,
        }),
    })
}

/// The reader npyz gives for elements of type `ts` read as `T`.
fn reader<T: Deserialize>(ts: &TypeStr) -> io::Result<T::TypeReader> {
    let dtype = npyz::DType::Plain(ts.clone());
    T::reader(&dtype).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `n` elements of type `ts`, converted to the machine's byte order by npyz.
fn read_elements<T: Deserialize>(r: &mut impl Read, ts: &TypeStr, n: usize) -> io::Result<Vec<T>> {
    let reader = reader::<T>(ts)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(reader.read_one(&mut *r)?);
    }
    Ok(v)
}

/// `n` integers of type `ts` read as `T` and converted to `i32`; the first that does not fit
/// is refused with its index.
fn read_ints<T>(r: &mut impl Read, ts: &TypeStr, n: usize) -> Result<Vec<i32>, Fail>
where
    T: Deserialize + Copy + std::fmt::Display,
    i32: TryFrom<T>,
{
    let reader = reader::<T>(ts)?;
    let mut v = Vec::with_capacity(n);
    for index in 0..n {
        let x = reader.read_one(&mut *r)?;
        let value = i32::try_from(x).map_err(|_| Fail::OutOfRange {
            index: index as u64,
            value: x.to_string(),
        })?;
        v.push(value);
    }
    Ok(v)
}

/// Writes `a` to `path` atomically (see [`stage_npy`] and [`StagedNpy::commit`]); on error
/// nothing is left behind and an existing file at `path` is untouched.
pub fn write_npy(path: impl AsRef<Path>, a: &Array) -> Result<(), NpyError> {
    stage_npy(path, a)?.commit()
}

/// A `.npy` file written and synced under a temporary name beside its destination, waiting to
/// be renamed into place by [`StagedNpy::commit`]. Dropping it uncommitted removes the
/// temporary file.
#[derive(Debug)]
pub struct StagedNpy(Staged);

/// Writes `a` in npy format to a new temporary file in the directory of `path` and syncs it to
/// disk; `path` itself is not touched until [`StagedNpy::commit`]. On error the temporary file
/// is removed.
pub fn stage_npy(path: impl AsRef<Path>, a: &Array) -> Result<StagedNpy, NpyError> {
    let path = path.as_ref();
    atomic::write_through(path, |w| write_array(w, a), Some(Step::Synced))
        .map(StagedNpy)
        .map_err(|source| NpyError::Write {
            path: path.to_path_buf(),
            source,
        })
}

impl StagedNpy {
    /// The destination the file will have once committed.
    pub fn path(&self) -> &Path {
        self.0.dest()
    }

    /// Renames the temporary file over the destination (atomically replacing any file there)
    /// and syncs the directory. On error the temporary file is removed.
    pub fn commit(mut self) -> Result<(), NpyError> {
        self.0.rename().map_err(|source| NpyError::Write {
            path: self.0.dest().to_path_buf(),
            source,
        })?;
        self.0.sync_dir();
        Ok(())
    }
}

/// Writes `a` to `w` through npyz.
fn write_array(w: &mut dyn Write, a: &Array) -> io::Result<()> {
    let shape: Vec<u64> = a.shape().iter().map(|&d| d as u64).collect();
    match a.data() {
        Data::F32(v) => write_elements(w, &shape, v),
        Data::F64(v) => write_elements(w, &shape, v),
        Data::I32(v) => write_elements(w, &shape, v),
        Data::Bool(v) => write_elements(w, &shape, v),
    }
}

fn write_elements<T: AutoSerialize + Copy>(
    w: impl Write,
    shape: &[u64],
    v: &[T],
) -> io::Result<()> {
    let mut writer = WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(w)
        .begin_nd()?;
    writer.extend(v.iter().copied())?;
    writer.finish()
}

#[cfg(test)]
mod tests;
