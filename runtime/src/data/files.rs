//! Data sets from users' files: [`read_data`] picks the reader by the path, `.csv`
//! ([`read_csv`]), `.npz` ([`read_npz`]), `.safetensors` ([`read_safetensors`]), one `.npy`
//! file, or a directory of `.npy` files ([`read_npy_columns`]).
//!
//! Every reader checks what a file claims against stated limits before allocating for it
//! ([`MAX_DATA_FILE_BYTES`], [`MAX_NPZ_BYTES`], [`MAX_COLUMNS`], the npy reader's
//! [`npy::MAX_ELEMENTS`]), and every error names the file, and the member or tensor at fault.
//! The byte-taking forms ([`read_npz_bytes`], [`read_safetensors_bytes`]) are what the
//! path-taking ones call, and what the fuzz targets feed.
//!
//! Element types: kiln has `f32`, `f64`, `i32` and `bool`. Other integer types are read as
//! `i32`, a value outside its range refused with its flat index; half-precision floats (`F16`,
//! `BF16` in safetensors) are widened to `f32`.

use super::csv::read_csv;
use super::{DataError, Dataset};
use crate::npy::{self, read_npy, read_npy_bytes};
use kiln_compiler::{Array, Data};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use zip::ZipArchive;

/// The largest `.npz` or `.safetensors` file read, in bytes (4 GiB); a larger file is refused
/// before it is read.
pub const MAX_DATA_FILE_BYTES: u64 = 1 << 32;

/// The most bytes the members of an `.npz` archive may expand to, together (4 GiB). Checked
/// against the sizes the archive's directory declares before any member is read; each member is
/// then expanded no further than its declared size and one byte more, so an archive whose data
/// expands past what it declares (a zip bomb) is refused after that byte.
pub const MAX_NPZ_BYTES: u64 = 1 << 32;

/// The most columns a data set read from a file may have (16,384): an archive, a safetensors
/// file, a directory or a CSV header naming more is refused before the columns are read.
pub const MAX_COLUMNS: usize = 1 << 14;

/// The data set at `path`, by its form: a directory (every `*.npy` file in it a column named
/// by its stem, in the order of the names), or a file by its extension, in any case: `.csv`
/// ([`read_csv`]), `.npz` ([`read_npz`]), `.safetensors` ([`read_safetensors`]) or `.npy`
/// (one column named by the file's stem). Any other path is refused naming it and the formats
/// read; a missing one with [`DataError::Read`].
pub fn read_data(path: &Path) -> Result<Dataset, DataError> {
    if path.is_dir() {
        return read_npy_dir(path);
    }
    let extension = (path.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => read_csv(path),
        Some("npz") => read_npz(path),
        Some("safetensors") => read_safetensors(path),
        Some("npy") => read_npy_columns(&[(column_name(path)?, path.to_path_buf())]),
        _ if !path.exists() => Err(DataError::Read {
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        }),
        _ => Err(DataError::Format {
            path: path.to_path_buf(),
            reason: "its extension names no data format kiln reads".into(),
        }),
    }
}

/// The data set of one `.npy` file per column, in the order given: `(name, path)`. Refused: a
/// file [`read_npy`] refuses (naming it), columns of different lengths or a scalar (naming
/// the file), two columns of one name, none at all, or more than [`MAX_COLUMNS`].
pub fn read_npy_columns(columns: &[(String, PathBuf)]) -> Result<Dataset, DataError> {
    if let Some((_, path)) = columns.get(MAX_COLUMNS) {
        return Err(too_many_columns(path, columns.len()));
    }
    let arrays = (columns.iter())
        .map(|(name, path)| Ok((name.clone(), read_npy(path)?)))
        .collect::<Result<Vec<_>, DataError>>()?;
    Dataset::new(arrays).map_err(|e| {
        let file = match &e {
            DataError::Column { column, .. } => columns.iter().find(|(n, _)| n == column),
            _ => None,
        };
        match file {
            Some((_, path)) => mismatch(path, e.to_string()),
            None => e,
        }
    })
}

/// Every `*.npy` file in the directory `dir` (not its subdirectories), a column named by its
/// stem, sorted by name; refused when there is none.
fn read_npy_dir(dir: &Path) -> Result<Dataset, DataError> {
    let read_err = |source| DataError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
            && path.is_file()
        {
            files.push((column_name(&path)?, path));
        }
    }
    if files.is_empty() {
        return Err(DataError::Format {
            path: dir.to_path_buf(),
            reason: "the directory holds no .npy file".into(),
        });
    }
    files.sort();
    read_npy_columns(&files)
}

/// The column name a file gives: its stem, which must be UTF-8.
fn column_name(path: &Path) -> Result<String, DataError> {
    (path.file_stem().and_then(|s| s.to_str()))
        .map(str::to_string)
        .ok_or_else(|| mismatch(path, "its file name is not UTF-8, and names a column"))
}

/// Reads the `.npz` file at `path` (see [`read_npz_bytes`]); a file over
/// [`MAX_DATA_FILE_BYTES`] is refused before it is read.
pub fn read_npz(path: &Path) -> Result<Dataset, DataError> {
    let bytes = read_file(path, MAX_DATA_FILE_BYTES, ".npz")?;
    read_npz_bytes(&bytes, path)
}

/// The data set in `bytes`, the contents of an `.npz` file (a zip archive of `.npy` files, as
/// `numpy.savez` and `savez_compressed` write): each member a column named by its name without
/// `.npy`, in the archive's order, decoded by kiln's npy reader ([`read_npy_bytes`], with its
/// limits). Errors name the file as `origin`. Refused: not a zip archive, no members, more than
/// [`MAX_COLUMNS`], members declaring more than [`MAX_NPZ_BYTES`] together (before any is read),
/// a member whose data expands past or falls short of its declared size, compressed by a method
/// other than stored or deflate, encrypted, or not a valid `.npy` (naming the member), and
/// columns that do not form a [`Dataset`].
pub fn read_npz_bytes(bytes: &[u8], origin: &Path) -> Result<Dataset, DataError> {
    if bytes.len() as u64 > MAX_DATA_FILE_BYTES {
        return Err(file_too_large(origin, bytes.len() as u64));
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        mismatch(
            origin,
            format!("it is not a zip archive, as .npz files are: {e}"),
        )
    })?;
    let members = declared_members(&archive, origin)?;
    let mut columns = Vec::with_capacity(members.len());
    for (index, (member, size)) in members.into_iter().enumerate() {
        let npy_bytes = expand_member(&mut archive, index, size)
            .map_err(|reason| member_error(origin, &member, reason))?;
        let array = read_npy_bytes(&npy_bytes, &member)
            .map_err(|e| member_error(origin, &member, e.to_string()))?;
        let name = member.strip_suffix(".npy").unwrap_or(&member).to_string();
        columns.push((name, array));
    }
    Dataset::new(columns).map_err(|e| mismatch(origin, e.to_string()))
}

/// The archive's members, names and declared sizes, from its central directory; refused when
/// there are none, more than [`MAX_COLUMNS`], names repeat or are not text, or the sizes add up
/// to more than [`MAX_NPZ_BYTES`].
fn declared_members(
    archive: &ZipArchive<Cursor<&[u8]>>,
    origin: &Path,
) -> Result<Vec<(String, u64)>, DataError> {
    if archive.is_empty() {
        return Err(mismatch(origin, "the archive holds no arrays"));
    }
    if archive.len() > MAX_COLUMNS {
        return Err(too_many_columns(origin, archive.len()));
    }
    if archive.has_duplicate_names() {
        return Err(mismatch(origin, "two members of the archive have one name"));
    }
    let mut members = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = (archive.by_index_data(index))
            .map_err(|e| mismatch(origin, format!("member {index}: {e}")))?;
        let name = (entry.name())
            .map_err(|e| mismatch(origin, format!("member {index}'s name: {e}")))?
            .into_owned();
        total = total.saturating_add(entry.size());
        if total > MAX_NPZ_BYTES {
            return Err(DataError::TooLarge {
                path: origin.to_path_buf(),
                reason: format!(
                    "its members up to `{name}` declare {total} bytes expanded, more than the \
                     {MAX_NPZ_BYTES} kiln reads from an archive"
                ),
            });
        }
        members.push((name, entry.size()));
    }
    Ok(members)
}

/// The bytes of member `index`, which declares `size` bytes expanded: read no further than
/// one byte past `size`, and refused unless it holds exactly `size`.
fn expand_member(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    index: usize,
    size: u64,
) -> Result<Vec<u8>, String> {
    let member = archive.by_index(index).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    let read = (member.take(size.saturating_add(1))).read_to_end(&mut bytes);
    let past = || format!("its data expands past the {size} bytes it declares");
    match read {
        // The zip crate refuses to expand past the declared size itself.
        Err(_) if bytes.len() as u64 >= size => return Err(past()),
        Err(e) => return Err(e.to_string()),
        Ok(_) => {}
    }
    match (bytes.len() as u64).cmp(&size) {
        std::cmp::Ordering::Equal => Ok(bytes),
        std::cmp::Ordering::Greater => Err(past()),
        std::cmp::Ordering::Less => Err(format!(
            "its data expands to {} bytes, fewer than the {size} it declares",
            bytes.len()
        )),
    }
}

/// Reads the safetensors file at `path` (see [`read_safetensors_bytes`]); a file over
/// [`MAX_DATA_FILE_BYTES`] is refused before it is read.
pub fn read_safetensors(path: &Path) -> Result<Dataset, DataError> {
    let bytes = read_file(path, MAX_DATA_FILE_BYTES, "safetensors")?;
    read_safetensors_bytes(&bytes, path)
}

/// The data set in `bytes`, the contents of a safetensors file: each tensor a column of its
/// name, sorted by name (the file's order is its writer's, not its user's); `__metadata__` is
/// ignored. Errors name the file as `origin`, and the tensor at fault. Types: `F32`, `F64`,
/// `I32`, `BOOL` as they are; `I8`, `I16`, `I64`, `U8`, `U16`, `U32`, `U64` as `i32`, a value
/// outside its range refused with its flat index; `F16` and `BF16` widened to `f32`; others
/// refused. Refused too: a header safetensors refuses (over 100 MB, malformed, tensors' byte
/// ranges not tiling the data exactly, element counts overflowing), a tensor of more than
/// [`npy::MAX_ELEMENTS`] elements (every extent counted as at least 1), more than
/// [`MAX_COLUMNS`] tensors, a bool byte other than 0 and 1, and tensors that do not form a
/// [`Dataset`].
pub fn read_safetensors_bytes(bytes: &[u8], origin: &Path) -> Result<Dataset, DataError> {
    if bytes.len() as u64 > MAX_DATA_FILE_BYTES {
        return Err(file_too_large(origin, bytes.len() as u64));
    }
    let (header_len, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
        let reason = match e {
            SafeTensorError::MetadataIncompleteBuffer => {
                "its tensors' data does not end where the file does (truncated, or bytes added)"
                    .to_string()
            }
            e => format!("not a valid safetensors file: {e}"),
        };
        mismatch(origin, reason)
    })?;
    let mut tensors: Vec<_> = header.tensors().into_iter().collect();
    if tensors.len() > MAX_COLUMNS {
        return Err(too_many_columns(origin, tensors.len()));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    // `read_metadata` checked that the header and the tensors' data fill `bytes` exactly.
    let data = bytes.get(8 + header_len..).unwrap_or_default();
    let columns = (tensors.into_iter())
        .map(|(name, info)| match decode_tensor(info, data) {
            Ok(array) => Ok((name, array)),
            Err(reason) => Err(DataError::Tensor {
                path: origin.to_path_buf(),
                tensor: name,
                reason,
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Dataset::new(columns).map_err(|e| mismatch(origin, e.to_string()))
}

/// The tensor `info` describes (its byte range checked by safetensors against `data`, the
/// file's data section), converted to a kiln element type.
fn decode_tensor(info: &TensorInfo, data: &[u8]) -> Result<Array, String> {
    let counted = (info.shape.iter()).try_fold(1u64, |n, &d| n.checked_mul((d as u64).max(1)));
    if counted.is_none_or(|n| n > npy::MAX_ELEMENTS) {
        return Err(format!(
            "its shape {:?} holds more than the {} elements kiln reads",
            info.shape,
            npy::MAX_ELEMENTS
        ));
    }
    let (start, end) = info.data_offsets;
    let bytes = data
        .get(start..end)
        .ok_or_else(|| "its data lies outside the file".to_string())?;
    let elements = match info.dtype {
        Dtype::F32 => Data::F32(from_le(bytes, f32::from_le_bytes)),
        Dtype::F64 => Data::F64(from_le(bytes, f64::from_le_bytes)),
        Dtype::I32 => Data::I32(from_le(bytes, i32::from_le_bytes)),
        Dtype::BOOL => Data::Bool(bools(bytes)?),
        Dtype::F16 => Data::F32(from_le(bytes, |b| half::f16::from_le_bytes(b).to_f32())),
        Dtype::BF16 => Data::F32(from_le(bytes, |b| half::bf16::from_le_bytes(b).to_f32())),
        Dtype::I8 => Data::I32(ints(&from_le(bytes, i8::from_le_bytes))?),
        Dtype::I16 => Data::I32(ints(&from_le(bytes, i16::from_le_bytes))?),
        Dtype::I64 => Data::I32(ints(&from_le(bytes, i64::from_le_bytes))?),
        Dtype::U8 => Data::I32(ints(bytes)?),
        Dtype::U16 => Data::I32(ints(&from_le(bytes, u16::from_le_bytes))?),
        Dtype::U32 => Data::I32(ints(&from_le(bytes, u32::from_le_bytes))?),
        Dtype::U64 => Data::I32(ints(&from_le(bytes, u64::from_le_bytes))?),
        other => {
            return Err(format!(
                "its type is {other}; kiln reads F32, F64, I32 and BOOL, the integers I8, I16, \
                 I64, U8, U16, U32 and U64 as I32, and F16 and BF16 as F32"
            ));
        }
    };
    Array::new(&info.shape, elements).map_err(|e| e.to_string())
}

/// Little-endian elements of `N` bytes each (a partial last element is dropped, and then the
/// element count does not fill the shape).
fn from_le<const N: usize, T>(bytes: &[u8], element: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .as_chunks::<N>()
        .0
        .iter()
        .map(|&b| element(b))
        .collect()
}

/// Bool bytes, each 0 or 1.
fn bools(bytes: &[u8]) -> Result<Vec<bool>, String> {
    (bytes.iter().enumerate())
        .map(|(i, &b)| match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(format!("it holds the byte {b} as a bool at flat index {i}")),
        })
        .collect()
}

/// Integers converted to `i32`; the first outside its range is refused with its index.
fn ints<T>(values: &[T]) -> Result<Vec<i32>, String>
where
    T: Copy + std::fmt::Display,
    i32: TryFrom<T>,
{
    (values.iter().enumerate())
        .map(|(i, &x)| {
            i32::try_from(x).map_err(|_| {
                format!(
                    "it holds {x} at flat index {i}, outside the range of i32 (kiln reads \
                     integers as i32)"
                )
            })
        })
        .collect()
}

/// The bytes of the file at `path`, read after checking that it holds at most `max` bytes;
/// `what` names the format in the refusal.
pub(super) fn read_file(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, DataError> {
    let read_err = |source| DataError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    if len > max {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, more than the {max} of a {what} file kiln reads"),
        });
    }
    // `len` is what the file holds, checked above, not what a header claims.
    let mut bytes = Vec::with_capacity(len as usize);
    (file.take(max.saturating_add(1)))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > max {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            reason: format!("it grew past {max} bytes while read, the most kiln reads"),
        });
    }
    Ok(bytes)
}

/// [`DataError::Mismatch`]: the file at `path` holds something the reader refuses.
fn mismatch(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Mismatch {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// [`DataError::Member`]: member `member` of the archive at `path` is refused.
fn member_error(path: &Path, member: &str, reason: String) -> DataError {
    DataError::Member {
        path: path.to_path_buf(),
        member: member.to_string(),
        reason,
    }
}

/// [`DataError::TooLarge`]: more than [`MAX_COLUMNS`] columns.
fn too_many_columns(path: &Path, count: usize) -> DataError {
    DataError::TooLarge {
        path: path.to_path_buf(),
        reason: format!("{count} columns, more than the {MAX_COLUMNS} kiln reads"),
    }
}

/// [`DataError::TooLarge`]: a file of `len` bytes, over [`MAX_DATA_FILE_BYTES`].
fn file_too_large(path: &Path, len: u64) -> DataError {
    DataError::TooLarge {
        path: path.to_path_buf(),
        reason: format!("{len} bytes, more than the {MAX_DATA_FILE_BYTES} kiln reads"),
    }
}

#[cfg(test)]
#[path = "tests_files.rs"]
mod tests;
