//! IDX files, the MNIST format: a big-endian header of element type and extents, then the
//! elements. Plain or gzip-compressed (detected by the gzip magic bytes).

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Elements an IDX file may declare at most (2^31), checked before anything is allocated.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Why an IDX file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read (including a corrupt gzip stream).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The header is not an IDX header.
    #[error("{path} is not an IDX file: {reason}")]
    NotIdx {
        /// The file.
        path: PathBuf,
        /// What is wrong with the header.
        reason: String,
    },
    /// The elements are not unsigned bytes.
    #[error("{path}: IDX element type 0x{code:02x} is not supported (only 0x08, unsigned bytes)")]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type code in the header.
        code: u8,
    },
    /// The file holds fewer (or more) elements than its header declares.
    #[error("{path}: the header declares {expected} elements but the file holds {found}")]
    Length {
        /// The file.
        path: PathBuf,
        /// Elements the header declares.
        expected: usize,
        /// Elements present.
        found: usize,
    },
}

/// The contents of an IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Extents, outermost first (for MNIST images `[n, 28, 28]`, labels `[n]`).
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, plain or gzip-compressed.
pub fn read_idx(path: &Path) -> Result<Idx, IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|e| e.at(path))
}

/// A parse failure before the path is known.
enum Failure {
    NotIdx(String),
    Type(u8),
    Length(usize, usize),
}

impl Failure {
    fn at(self, path: &Path) -> IdxError {
        let path = path.to_path_buf();
        match self {
            Failure::NotIdx(reason) => IdxError::NotIdx { path, reason },
            Failure::Type(code) => IdxError::UnsupportedType { path, code },
            Failure::Length(expected, found) => IdxError::Length {
                path,
                expected,
                found,
            },
        }
    }
}

fn parse_idx(bytes: &[u8]) -> Result<Idx, Failure> {
    let Some(&[z0, z1, code, rank]) = bytes.first_chunk::<4>() else {
        return Err(Failure::NotIdx(
            "shorter than its 4-byte magic number".into(),
        ));
    };
    if (z0, z1) != (0, 0) {
        return Err(Failure::NotIdx(format!(
            "the magic number starts {z0:#04x} {z1:#04x}, not 0x00 0x00"
        )));
    }
    if code != 0x08 {
        return Err(Failure::Type(code));
    }
    let rank = rank as usize;
    let header = 4 + 4 * rank;
    let Some(dims) = bytes.get(4..header) else {
        return Err(Failure::NotIdx(format!(
            "the header of {rank} extents is cut short"
        )));
    };
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            Failure::NotIdx(format!(
                "the extents {shape:?} exceed the limit of {MAX_ELEMENTS} elements"
            ))
        })?;
    let found = bytes.len() - header;
    if found != expected {
        return Err(Failure::Length(expected, found));
    }
    Ok(Idx {
        shape,
        data: bytes[header..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(shape: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, shape.len() as u8];
        for d in shape {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    fn parse(b: &[u8]) -> Result<Idx, IdxError> {
        parse_idx(b).map_err(|e| e.at(Path::new("f")))
    }

    #[test]
    fn reads_a_small_file() {
        let b = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let i = parse(&b).unwrap();
        assert_eq!(i.shape, vec![2, 3]);
        assert_eq!(i.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn refuses_bad_headers_and_lengths() {
        let msg = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert_eq!(
            msg(&[0, 0]),
            "f is not an IDX file: shorter than its 4-byte magic number"
        );
        assert_eq!(
            msg(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
            "f: IDX element type 0x0d is not supported (only 0x08, unsigned bytes)"
        );
        assert_eq!(
            msg(&idx(&[2, 3], &[1, 2])),
            "f: the header declares 6 elements but the file holds 2"
        );
        assert!(msg(&idx(&[65536, 65536, 2], &[])).contains("exceed the limit"));
        assert!(msg(&[1, 0, 8, 1]).contains("not 0x00 0x00"));
        assert!(msg(&[0, 0, 8, 3, 0, 0]).contains("cut short"));
    }

    #[test]
    fn reads_the_embedded_mnist_labels() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist10k-labels-idx1-ubyte.gz");
        let i = read_idx(&path).unwrap();
        assert_eq!(i.shape, vec![10_000]);
        assert!(i.data.iter().all(|&l| l < 10));
    }
}
