//! Tests of the readers of users' data files: CSV, npz, safetensors, `.npy` columns and
//! [`read_data`]'s choice among them.

use super::*;
use crate::data::csv::read_table;
use crate::data::{MAX_CSV_BYTES, read_csv, read_csv_bytes};
use crate::npy::write_npy;
use kiln_compiler::DType;
use safetensors::tensor::TensorView;
use std::io::Write;
use tempfile::TempDir;
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// The message of reading `text` as the CSV file `data.csv`.
fn csv_err(text: &str) -> String {
    csv_bytes_err(text.as_bytes())
}

fn csv_bytes_err(bytes: &[u8]) -> String {
    read_csv_bytes(bytes, Path::new("data.csv"))
        .unwrap_err()
        .to_string()
}

fn f64s(v: &[f64]) -> Array {
    Array::from_f64([v.len()], v.to_vec()).unwrap()
}

fn i32s(v: &[i32]) -> Array {
    Array::from_i32([v.len()], v.to_vec()).unwrap()
}

#[test]
fn a_csv_file_is_a_column_of_f64_per_header_name() {
    let text = "\u{feff}age, bmi ,\"target\"\r\n 1, 2.5 ,\"3\"\r\n\r\n-4,1e3,+6\n7,.5,8.";
    let d = read_csv_bytes(text.as_bytes(), Path::new("data.csv")).unwrap();
    assert_eq!(d.names(), ["age", "bmi", "target"]);
    assert_eq!(d.len(), 3);
    assert_eq!(d.column("age"), Some(&f64s(&[1.0, -4.0, 7.0])));
    assert_eq!(d.column("bmi"), Some(&f64s(&[2.5, 1000.0, 0.5])));
    assert_eq!(d.column("target"), Some(&f64s(&[3.0, 6.0, 8.0])));
}

#[test]
fn a_csv_file_reads_as_its_bytes_do() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("t.csv");
    fs::write(&path, "a,b\n1,2\n3,x\n").unwrap();
    let e = read_csv(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: line 3, column `b`: `x` is not a number",
            path.display()
        )
    );
    fs::write(&path, "a,b\n1,2\n").unwrap();
    assert_eq!(read_csv(&path).unwrap().column("b"), Some(&f64s(&[2.0])));
    let e = read_csv(&dir.path().join("none.csv")).unwrap_err();
    assert!(matches!(e, DataError::Read { .. }), "{e}");
    assert!(e.to_string().contains("none.csv"), "{e}");
}

#[test]
fn a_cell_that_is_not_a_finite_number_is_named_by_line_and_column() {
    let e = csv_err("age,bmi\n1,2\n3,4\n5,6\n7,8\n9,10\n11,abc\n");
    assert_eq!(e, "data.csv: line 7, column `bmi`: `abc` is not a number");
    for cell in ["inf", "-infinity", "NaN", "1e400"] {
        let e = csv_err(&format!("a,b\n{cell},1\n"));
        assert_eq!(
            e,
            format!("data.csv: line 2, column `a`: `{cell}` is not a finite number")
        );
    }
    let long = "x".repeat(100);
    let e = csv_err(&format!("a\n{long}\n"));
    assert!(
        e.ends_with(&format!("`{}...` is not a number", &long[..40])),
        "{e}"
    );
}

#[test]
fn an_empty_cell_is_a_missing_value() {
    let msg = "the cell is empty (a missing value); every cell needs a number";
    assert_eq!(
        csv_err("a,b,c\n1,2,3\n4,,6\n"),
        format!("data.csv: line 3, column `b`: {msg}")
    );
    assert_eq!(
        csv_err("a,b\n1,   \n"),
        format!("data.csv: line 2, column `b`: {msg}")
    );
    assert_eq!(
        csv_err("a,b\n1,\"\"\n"),
        format!("data.csv: line 2, column `b`: {msg}")
    );
}

#[test]
fn a_ragged_row_names_its_count_and_the_headers() {
    assert_eq!(
        csv_err("a,b,c\n1,2,3\n1,2\n"),
        "data.csv: line 3: 2 cells, but the header names 3 columns"
    );
    assert_eq!(
        csv_err("a,b\n1,2,3\n"),
        "data.csv: line 2: 3 cells, but the header names 2 columns"
    );
}

#[test]
fn a_row_is_numbered_by_the_line_it_starts_on() {
    // A quoted cell spans two lines; a blank line is skipped but counted.
    let e = csv_err("a,\"b\nc\"\n1,2\n\n3,y\n");
    assert_eq!(e, "data.csv: line 5, column `b\nc`: `y` is not a number");
    let e = csv_err("\u{feff}a,b\n1,2\n\n\r\n3,y\n");
    assert_eq!(e, "data.csv: line 5, column `b`: `y` is not a number");
    let e = csv_err("a,b\r1,2\r\r3,y\r");
    assert_eq!(e, "data.csv: line 4, column `b`: `y` is not a number");
}

#[test]
fn header_names_are_non_empty_unique_and_utf8() {
    assert_eq!(
        csv_err("a,,c\n1,2,3\n"),
        "data.csv: line 1: column 2 has no name"
    );
    assert_eq!(
        csv_err("a, ,c\n1,2,3\n"),
        "data.csv: line 1: column 2 has no name"
    );
    assert_eq!(
        csv_err("x,y, x\n1,2,3\n"),
        "data.csv: line 1, column `x`: the header names columns 1 and 3 alike"
    );
    assert_eq!(
        csv_bytes_err(b"a,\xff\n1,2\n"),
        "data.csv: line 1: column 2's name is not UTF-8"
    );
}

#[test]
fn a_cell_that_is_not_utf8_is_named() {
    assert_eq!(
        csv_bytes_err(b"a,b\n1,2\n3,\xc3\x28\n"),
        "data.csv: line 3, column `b`: the cell is not UTF-8 text"
    );
}

#[test]
fn an_empty_file_or_a_header_alone_holds_no_examples() {
    assert_eq!(
        csv_err(""),
        "data.csv: line 1: the file is empty; it needs a header row naming the columns"
    );
    assert_eq!(
        csv_err("a,b\n"),
        "data.csv: line 1: a header and no rows: the file holds no examples"
    );
    assert_eq!(
        csv_err("\n\na,b\n\n"),
        "data.csv: line 3: a header and no rows: the file holds no examples"
    );
}

#[test]
fn a_csv_over_the_limits_is_refused() {
    let e = read_table(b"a,b\n1,2\n3,4\n5,6\n", Path::new("data.csv"), 5).unwrap_err();
    assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "data.csv: line 4: more than the 5 cells of a CSV file kiln reads"
    );
    assert!(read_table(b"a,b\n1,2\n3,4\n", Path::new("data.csv"), 4).is_ok());
    let header = (0..=MAX_COLUMNS)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>();
    let e = csv_err(&format!("{}\n", header.join(",")));
    assert_eq!(
        e,
        "data.csv: line 1: the header names 16385 columns, more than the 16384 kiln reads"
    );
    // A sparse file one byte over the limit: refused by its length, unread.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("big.csv");
    File::create(&path)
        .unwrap()
        .set_len(MAX_CSV_BYTES + 1)
        .unwrap();
    let e = read_csv(&path).unwrap_err();
    assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("1073741825 bytes, more than the 1073741824"),
        "{e}"
    );
}

/// The bytes of `a` as an `.npy` file, written by [`write_npy`].
fn npy_bytes(a: &Array) -> Vec<u8> {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a.npy");
    write_npy(&path, a).unwrap();
    fs::read(path).unwrap()
}

/// A version 1.0 `.npy` file of `descr` and a 1-D `shape` holding `data`.
fn raw_npy(descr: &str, len: usize, data: &[u8]) -> Vec<u8> {
    let mut text =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({len},), }}").into_bytes();
    while !(11 + text.len()).is_multiple_of(64) {
        text.push(b' ');
    }
    text.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((text.len() as u16).to_le_bytes());
    bytes.extend(text);
    bytes.extend(data);
    bytes
}

/// An `.npy` file of `int64` values, as numpy saves labels.
fn i64_npy(v: &[i64]) -> Vec<u8> {
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    raw_npy("<i8", v.len(), &data)
}

/// A zip archive of `members` (name, bytes), the first stored, the others deflated, as numpy's
/// `savez` and `savez_compressed` write them.
fn npz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
    for (i, (name, bytes)) in members.iter().enumerate() {
        let method = match i {
            0 => CompressionMethod::Stored,
            _ => CompressionMethod::Deflated,
        };
        let options = SimpleFileOptions::default().compression_method(method);
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn npz_err(bytes: &[u8]) -> String {
    read_npz_bytes(bytes, Path::new("data.npz"))
        .unwrap_err()
        .to_string()
}

#[test]
fn an_npz_archive_is_a_column_per_member() {
    let x = Array::from_f32([3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let bytes = npz(&[
        ("x.npy", npy_bytes(&x)),
        ("labels.npy", i64_npy(&[0, 2, 1])),
        (
            "w",
            npy_bytes(&Array::from_bool([3], vec![true, false, true]).unwrap()),
        ),
    ]);
    let d = read_npz_bytes(&bytes, Path::new("data.npz")).unwrap();
    assert_eq!(d.names(), ["x", "labels", "w"]);
    assert_eq!(d.column("x"), Some(&x));
    assert_eq!(d.column("labels"), Some(&i32s(&[0, 2, 1])));
    assert_eq!(d.column("w").unwrap().dtype(), DType::Bool);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("d.npz");
    fs::write(&path, &bytes).unwrap();
    assert_eq!(read_npz(&path).unwrap(), d);
    assert_eq!(read_data(&path).unwrap(), d);
}

#[test]
fn an_npz_label_outside_i32_is_refused_naming_the_member_and_index() {
    let bytes = npz(&[
        ("x.npy", npy_bytes(&f64s(&[1.0, 2.0]))),
        ("labels.npy", i64_npy(&[1, 1 << 40])),
    ]);
    assert_eq!(
        npz_err(&bytes),
        "data.npz: member `labels.npy`: `labels.npy` holds 1099511627776 at flat index 1, \
         outside the range of i32 (kiln reads integers as i32)"
    );
}

#[test]
fn a_truncated_or_foreign_npz_is_refused() {
    let bytes = npz(&[("x.npy", npy_bytes(&f64s(&[1.0, 2.0])))]);
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        let e = npz_err(&bytes[..cut]);
        assert!(
            e.starts_with("data.npz: it is not a zip archive, as .npz files are"),
            "{e}"
        );
    }
    let e = npz_err(&npz(&[]));
    assert_eq!(e, "data.npz: the archive holds no arrays");
    let e = npz_err(&npz(&[("x.npy", b"hello".to_vec())]));
    assert!(
        e.starts_with("data.npz: member `x.npy`: `x.npy` is not a valid npy file"),
        "{e}"
    );
}

#[test]
fn npz_members_of_different_lengths_are_refused() {
    let bytes = npz(&[
        ("x.npy", npy_bytes(&f64s(&[1.0, 2.0, 3.0]))),
        ("y.npy", i64_npy(&[1, 2])),
    ]);
    assert_eq!(
        npz_err(&bytes),
        "data.npz: column `y`: 2 examples, but column `x` has 3: columns share their first axis"
    );
}

/// Sets the uncompressed size the central directory declares for every member of `zip` to
/// `size`.
fn declare_size(zip: &mut [u8], size: u32) {
    let mut at = 0;
    while let Some(i) = (zip[at..].windows(4)).position(|w| w == b"PK\x01\x02") {
        let entry = at + i;
        zip[entry + 24..entry + 28].copy_from_slice(&size.to_le_bytes());
        at = entry + 4;
    }
}

#[test]
fn an_npz_member_expanding_past_its_declared_size_is_refused() {
    let zeros = npy_bytes(&Array::full(DType::F32, [1 << 18], 0.0));
    let mut bytes = npz(&[("pad.npy", npy_bytes(&f64s(&[0.0]))), ("x.npy", zeros)]);
    assert!(bytes.len() < 4096, "{} bytes", bytes.len());
    declare_size(&mut bytes, 128);
    let e = npz_err(&bytes);
    assert!(
        e.starts_with("data.npz: member `pad.npy`: its data expands past the 128 bytes"),
        "{e}"
    );
    declare_size(&mut bytes, 0xffff_0000);
    let e = read_npz_bytes(&bytes, Path::new("data.npz")).unwrap_err();
    assert!(matches!(e, DataError::TooLarge { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "data.npz: its members up to `x.npy` declare 8589803520 bytes expanded, more than the \
         4294967296 kiln reads from an archive"
    );
}

/// A safetensors file of `tensors`: (name, dtype, shape, little-endian bytes).
fn safetensors_file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views = (tensors.iter())
        .map(|(name, dtype, shape, data)| {
            (*name, TensorView::new(*dtype, shape.clone(), data).unwrap())
        })
        .collect::<Vec<_>>();
    safetensors::serialize(views, None).unwrap()
}

fn le<const N: usize, T: Copy>(v: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| bytes(x)).collect()
}

fn st_err(bytes: &[u8]) -> String {
    read_safetensors_bytes(bytes, Path::new("data.safetensors"))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_safetensors_file_is_a_column_per_tensor_sorted_by_name() {
    let x = [1.5f32, -2.0, 3.0, 4.0];
    let bytes = safetensors_file(&[
        ("x", Dtype::F32, vec![2, 2], le(&x, f32::to_le_bytes)),
        (
            "labels",
            Dtype::I64,
            vec![2],
            le(&[7i64, -3], i64::to_le_bytes),
        ),
        ("u", Dtype::U8, vec![2], vec![255, 0]),
        (
            "h",
            Dtype::F16,
            vec![2],
            le(&[0x3c00u16, 0xc000], u16::to_le_bytes),
        ),
        (
            "b",
            Dtype::BF16,
            vec![2],
            le(&[0x3fc0u16, 0x4040], u16::to_le_bytes),
        ),
        ("m", Dtype::BOOL, vec![2, 1], vec![1, 0]),
    ]);
    let d = read_safetensors_bytes(&bytes, Path::new("data.safetensors")).unwrap();
    assert_eq!(d.names(), ["b", "h", "labels", "m", "u", "x"]);
    assert_eq!(
        d.column("x"),
        Some(&Array::from_f32([2, 2], x.to_vec()).unwrap())
    );
    assert_eq!(d.column("labels"), Some(&i32s(&[7, -3])));
    assert_eq!(d.column("u"), Some(&i32s(&[255, 0])));
    let f32s = |v: &[f32]| Array::from_f32([2], v.to_vec()).unwrap();
    assert_eq!(d.column("h"), Some(&f32s(&[1.0, -2.0])));
    assert_eq!(d.column("b"), Some(&f32s(&[1.5, 3.0])));
    let m = Array::from_bool([2, 1], vec![true, false]).unwrap();
    assert_eq!(d.column("m"), Some(&m));
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("d.safetensors");
    fs::write(&path, &bytes).unwrap();
    assert_eq!(read_safetensors(&path).unwrap(), d);
    assert_eq!(read_data(&path).unwrap(), d);
}

#[test]
fn a_safetensors_integer_outside_i32_is_refused_naming_the_tensor() {
    let bytes = safetensors_file(&[(
        "labels",
        Dtype::I64,
        vec![3],
        le(&[0i64, 1, 1 << 32], i64::to_le_bytes),
    )]);
    assert_eq!(
        st_err(&bytes),
        "data.safetensors: tensor `labels`: it holds 4294967296 at flat index 2, outside the \
         range of i32 (kiln reads integers as i32)"
    );
    let bytes = safetensors_file(&[("u", Dtype::U32, vec![1], le(&[u32::MAX], u32::to_le_bytes))]);
    assert!(st_err(&bytes).contains("holds 4294967295 at flat index 0"));
}

#[test]
fn other_safetensors_types_and_bad_files_are_refused() {
    let bytes = safetensors_file(&[("c", Dtype::C64, vec![1], vec![0; 8])]);
    let e = st_err(&bytes);
    assert!(
        e.starts_with("data.safetensors: tensor `c`: its type is C64; kiln reads F32"),
        "{e}"
    );
    let bytes = safetensors_file(&[("m", Dtype::BOOL, vec![2], vec![0, 2])]);
    assert_eq!(
        st_err(&bytes),
        "data.safetensors: tensor `m`: it holds the byte 2 as a bool at flat index 1"
    );
    let good = safetensors_file(&[("x", Dtype::F32, vec![2], vec![0; 8])]);
    let e = st_err(&good[..good.len() - 1]);
    assert!(e.contains("does not end where the file does"), "{e}");
    let e = st_err(&good[..5]);
    assert!(
        e.starts_with("data.safetensors: not a valid safetensors file"),
        "{e}"
    );
    let scalar = safetensors_file(&[("s", Dtype::F32, vec![], vec![0; 4])]);
    assert!(st_err(&scalar).contains("a column is a scalar"));
}

#[test]
fn a_safetensors_shape_claiming_too_many_elements_is_refused() {
    let bytes = safetensors_file(&[("x", Dtype::F32, vec![0, 1 << 40, 1 << 20], vec![])]);
    assert_eq!(
        st_err(&bytes),
        "data.safetensors: tensor `x`: its shape [0, 1099511627776, 1048576] holds more than \
         the 2147483648 elements kiln reads"
    );
}

#[test]
fn safetensors_tensors_of_different_lengths_are_refused() {
    let bytes = safetensors_file(&[
        ("a", Dtype::F32, vec![2], vec![0; 8]),
        ("b", Dtype::I32, vec![3], vec![0; 12]),
    ]);
    assert_eq!(
        st_err(&bytes),
        "data.safetensors: column `b`: 3 examples, but column `a` has 2: columns share their \
         first axis"
    );
}

#[test]
fn npy_columns_are_read_one_file_each() {
    let dir = TempDir::new().unwrap();
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    write_npy(&x, &f64s(&[1.0, 2.0])).unwrap();
    fs::write(&y, i64_npy(&[4, 5])).unwrap();
    let cols = [
        ("in".to_string(), x.clone()),
        ("out".to_string(), y.clone()),
    ];
    let d = read_npy_columns(&cols).unwrap();
    assert_eq!(d.names(), ["in", "out"]);
    assert_eq!(d.column("out"), Some(&i32s(&[4, 5])));
    fs::write(&y, i64_npy(&[4, 5, 6])).unwrap();
    let e = read_npy_columns(&cols).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: column `out`: 3 examples, but column `in` has 2: columns share their first axis",
            y.display()
        )
    );
    fs::write(&y, i64_npy(&[4, i64::MAX])).unwrap();
    let e = read_npy_columns(&cols).unwrap_err();
    assert!(matches!(e, DataError::Npy(_)), "{e}");
    assert!(
        e.to_string()
            .contains("y.npy` holds 9223372036854775807 at flat index 1"),
        "{e}"
    );
}

#[test]
fn read_data_goes_by_extension_or_directory() {
    let dir = TempDir::new().unwrap();
    let p = |name: &str| dir.path().join(name);
    fs::write(p("t.CSV"), "a\n1\n2\n").unwrap();
    assert_eq!(
        read_data(&p("t.CSV")).unwrap().column("a"),
        Some(&f64s(&[1.0, 2.0]))
    );
    let sub = p("cols");
    fs::create_dir(&sub).unwrap();
    let e = read_data(&sub).unwrap_err();
    assert!(matches!(e, DataError::Format { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: the directory holds no .npy file; kiln reads data from .csv, .npz, \
             .safetensors and .npy files, and from directories of .npy files (one column each)",
            sub.display()
        )
    );
    write_npy(sub.join("y.npy"), &i32s(&[1, 0])).unwrap();
    write_npy(sub.join("x.npy"), &f64s(&[0.5, 0.25])).unwrap();
    fs::write(sub.join("notes.txt"), "not a column").unwrap();
    let d = read_data(&sub).unwrap();
    assert_eq!(d.names(), ["x", "y"]);
    let one = read_data(&sub.join("y.npy")).unwrap();
    assert_eq!(one.names(), ["y"]);
    assert_eq!(one.column("y"), Some(&i32s(&[1, 0])));
    let e = read_data(&sub.join("notes.txt")).unwrap_err().to_string();
    assert!(
        e.contains(
            "notes.txt: its extension names no data format kiln reads; kiln reads data from .csv"
        ),
        "{e}"
    );
    let e = read_data(&p("missing.parquet")).unwrap_err();
    assert!(matches!(e, DataError::Read { .. }), "{e}");
    assert!(e.to_string().contains("missing.parquet"), "{e}");
}
