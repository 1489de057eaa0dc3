//! IDX files, the MNIST format: a big-endian header of element type and extents, then the
//! elements. Plain or gzip-compressed (detected by the gzip magic bytes).

use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
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
    /// The file holds fewer elements than its header declares.
    #[error("{path}: the header declares {expected} elements but the file holds {found}")]
    Length {
        /// The file.
        path: PathBuf,
        /// Elements the header declares.
        expected: usize,
        /// Elements present.
        found: usize,
    },
    /// The file holds more than the elements its header declares (the rest is not read).
    #[error("{path}: the file holds more than the {expected} elements its header declares")]
    Excess {
        /// The file.
        path: PathBuf,
        /// Elements the header declares.
        expected: usize,
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
    let file = File::open(path).map_err(|source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_idx_from(BufReader::new(file), path)
}

/// Reads an IDX file of unsigned bytes, plain or gzip-compressed, from `r`; errors name the
/// file as `origin`. The header is read and checked before any element: a file, or a gzip
/// stream, is read no further than the elements its header declares and one byte more (to
/// notice excess), so a small compressed file cannot expand into more than
/// [`MAX_ELEMENTS`] bytes.
pub fn read_idx_from(mut r: impl BufRead, origin: &Path) -> Result<Idx, IdxError> {
    let gzip = r
        .fill_buf()
        .map_err(|source| IdxError::Io {
            path: origin.to_path_buf(),
            source,
        })?
        .starts_with(&[0x1f, 0x8b]);
    let parsed = if gzip {
        parse_idx(GzDecoder::new(r))
    } else {
        parse_idx(r)
    };
    parsed.map_err(|e| e.at(origin))
}

/// A parse failure before the path is known.
enum Failure {
    Io(io::Error),
    NotIdx(String),
    Type(u8),
    Length(usize, usize),
    Excess(usize),
}

impl Failure {
    fn at(self, path: &Path) -> IdxError {
        let path = path.to_path_buf();
        match self {
            Failure::Io(source) => IdxError::Io { path, source },
            Failure::NotIdx(reason) => IdxError::NotIdx { path, reason },
            Failure::Type(code) => IdxError::UnsupportedType { path, code },
            Failure::Length(expected, found) => IdxError::Length {
                path,
                expected,
                found,
            },
            Failure::Excess(expected) => IdxError::Excess { path, expected },
        }
    }
}

/// Fills `buf` from `r`; an early end is `NotIdx(short)`.
fn read_header(
    r: &mut impl Read,
    buf: &mut [u8],
    short: impl Fn() -> String,
) -> Result<(), Failure> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Failure::NotIdx(short()),
        _ => Failure::Io(e),
    })
}

fn parse_idx(mut r: impl Read) -> Result<Idx, Failure> {
    let mut magic = [0u8; 4];
    read_header(&mut r, &mut magic, || {
        "shorter than its 4-byte magic number".into()
    })?;
    let [z0, z1, code, rank] = magic;
    if (z0, z1) != (0, 0) {
        return Err(Failure::NotIdx(format!(
            "the magic number starts {z0:#04x} {z1:#04x}, not 0x00 0x00"
        )));
    }
    if code != 0x08 {
        return Err(Failure::Type(code));
    }
    let rank = rank as usize;
    let mut dims = vec![0u8; 4 * rank];
    read_header(&mut r, &mut dims, || {
        format!("the header of {rank} extents is cut short")
    })?;
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
    // The vector grows with what is read, not with what the header claims.
    let mut data = Vec::new();
    r.take(expected as u64 + 1)
        .read_to_end(&mut data)
        .map_err(Failure::Io)?;
    match data.len() {
        found if found < expected => Err(Failure::Length(expected, found)),
        found if found > expected => Err(Failure::Excess(expected)),
        _ => Ok(Idx { shape, data }),
    }
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
        read_idx_from(b, Path::new("f"))
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, b).unwrap();
        e.finish().unwrap()
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
        assert_eq!(
            msg(&idx(&[2], &[1, 2, 3])),
            "f: the file holds more than the 2 elements its header declares"
        );
    }

    #[test]
    fn gzip_files_are_read_like_plain_ones() {
        let b = idx(&[2, 2], &[1, 2, 3, 4]);
        assert_eq!(parse(&gzip(&b)).unwrap(), parse(&b).unwrap());
        let msg = parse(&gzip(&idx(&[2, 3], &[1, 2])))
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "f: the header declares 6 elements but the file holds 2"
        );
    }

    #[test]
    fn a_gzip_bomb_is_refused_by_its_header_before_it_is_expanded() {
        // 10 elements declared, then 64 MiB of zeros that compress to a few dozen kilobytes:
        // reading stops at the 11th element.
        let mut b = idx(&[10], &[]);
        b.resize(b.len() + (64 << 20), 0);
        let bomb = gzip(&b);
        assert!(bomb.len() < 1 << 20);
        let msg = parse(&bomb).unwrap_err().to_string();
        assert_eq!(
            msg,
            "f: the file holds more than the 10 elements its header declares"
        );
        // A header claiming more than the limit is refused before any element is read.
        let huge = gzip(&idx(&[65536, 65536, 2], &[]));
        assert!(
            parse(&huge)
                .unwrap_err()
                .to_string()
                .contains("exceed the limit")
        );
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
