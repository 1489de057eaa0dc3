use super::*;
use std::fs;
use tempfile::TempDir;

/// An npy version 1.0 file with `dict` as its header and `data` after it.
fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut text = dict.as_bytes().to_vec();
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

fn file_with(dir: &TempDir, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join("a.npy");
    fs::write(&path, bytes).unwrap();
    path
}

fn round_trip(a: &Array) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a.npy");
    write_npy(&path, a).unwrap();
    let back = read_npy(&path).unwrap();
    assert_eq!(&back, a, "{a} did not round-trip");
    let from_bytes = read_npy_bytes(&fs::read(&path).unwrap(), &path).unwrap();
    assert_eq!(from_bytes, back);
    assert_eq!(back.dtype(), a.dtype());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a temporary file was left"
    );
}

#[test]
fn every_dtype_round_trips() {
    round_trip(
        &Array::from_f32([2, 3], vec![1.5, -0.0, f32::NAN, f32::INFINITY, 1e-38, 7.0]).unwrap(),
    );
    round_trip(
        &Array::from_f64([3], vec![std::f64::consts::PI, -1e300, f64::MIN_POSITIVE]).unwrap(),
    );
    round_trip(&Array::from_i32([2, 2], vec![i32::MIN, -1, 0, i32::MAX]).unwrap());
    round_trip(&Array::from_bool([1, 3], vec![true, false, true]).unwrap());
}

#[test]
fn scalars_and_empty_arrays_round_trip() {
    for dtype in DType::ALL {
        round_trip(&Array::scalar(dtype, 1.0));
        round_trip(&Array::full(dtype, [0], 0.0));
        round_trip(&Array::full(dtype, [2, 0, 3], 0.0));
    }
}

#[test]
fn files_are_little_endian_and_c_order() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a.npy");
    write_npy(&path, &Array::from_f32([2], vec![1.0, 2.0]).unwrap()).unwrap();
    let bytes = fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes[10..bytes.len() - 8]);
    assert!(
        text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, ), }"),
        "{text}"
    );
    assert_eq!(
        &bytes[bytes.len() - 8..],
        [1f32.to_le_bytes(), 2f32.to_le_bytes()].concat()
    );
}

#[test]
fn big_endian_files_are_converted() {
    let dir = TempDir::new().unwrap();
    let data = [1.5f32.to_be_bytes(), (-2f32).to_be_bytes()].concat();
    let path = file_with(
        &dir,
        &raw_npy(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}",
            &data,
        ),
    );
    assert_eq!(
        read_npy(&path).unwrap(),
        Array::from_f32([2], vec![1.5, -2.0]).unwrap()
    );
    let data = 7i32.to_be_bytes();
    let path = file_with(
        &dir,
        &raw_npy(
            "{'shape': (), 'fortran_order': False, 'descr': '>i4'}",
            &data,
        ),
    );
    assert_eq!(read_npy(&path).unwrap(), Array::scalar(DType::I32, 7.0));
}

fn read_err(dict: &str, data: &[u8]) -> String {
    let dir = TempDir::new().unwrap();
    let path = file_with(&dir, &raw_npy(dict, data));
    let msg = read_npy(&path).unwrap_err().to_string();
    let from_bytes = read_npy_bytes(&raw_npy(dict, data), &path).unwrap_err();
    assert_eq!(
        from_bytes.to_string(),
        msg,
        "bytes and file read differently"
    );
    msg.replace(&path.display().to_string(), "PATH")
}

#[test]
fn a_missing_file_is_unreadable() {
    let dir = TempDir::new().unwrap();
    let err = read_npy(dir.path().join("nope.npy")).unwrap_err();
    assert!(matches!(err, NpyError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.npy"), "{err}");
}

#[test]
fn other_files_are_not_npy() {
    let dir = TempDir::new().unwrap();
    for bytes in [&b"hello, world"[..], b"", b"\x93NUMPY\x09\x00"] {
        let path = file_with(&dir, bytes);
        let err = read_npy(&path).unwrap_err();
        assert!(matches!(err, NpyError::Invalid { .. }), "{err}");
    }
    assert_eq!(
        read_err("{'descr': '<f4', 'shape': (1,)}", &[0; 4]),
        "`PATH` is not a valid npy file: the header has no `fortran_order`"
    );
    assert_eq!(
        read_err(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
            &[]
        ),
        "`PATH` is not a valid npy file: unexpected character in the header at byte 51"
    );
    assert_eq!(
        read_err(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
            &[0; 4]
        ),
        "`PATH` is not a valid npy file: unexpected text after the header's dict at byte 56"
    );
    assert_eq!(
        read_err("((((((((((((((((((((((((((((((((((((((", &[]),
        "`PATH` is not a valid npy file: the header nests too deeply"
    );
}

#[test]
fn unsupported_dtypes_are_named() {
    let msg = read_err(
        "{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}",
        &[0; 8],
    );
    assert_eq!(
        msg,
        "`PATH` has dtype `<c8`; kiln reads <f4, <f8, <i4 and |b1, and |i1, <i2, <i8, |u1, <u2, \
         <u4 and <u8 as i32 (and their big-endian forms)"
    );
    let msg = read_err(
        "{'descr': '<f2', 'fortran_order': False, 'shape': (1,)}",
        &[0; 2],
    );
    assert!(msg.contains("dtype `<f2`"), "{msg}");
    let msg = read_err(
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
        &[0; 4],
    );
    assert!(msg.contains("dtype `structured dtype`"), "{msg}");
}

/// An npy file of `descr` and `shape` whose elements are `data`.
fn ints(descr: &str, shape: &str, data: &[u8]) -> Result<Array, String> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}}}");
    let bytes = raw_npy(&dict, data);
    read_npy_bytes(&bytes, "labels.npy").map_err(|e| e.to_string())
}

#[test]
fn other_integer_types_are_read_as_i32() {
    let i32s = |v: &[i32]| Ok(Array::from_i32([v.len()], v.to_vec()).unwrap());
    let le = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>();
    assert_eq!(ints("<i8", "(3,)", &le(&[0, -7, 9])), i32s(&[0, -7, 9]));
    let be: Vec<u8> = [5i64, -1].iter().flat_map(|x| x.to_be_bytes()).collect();
    assert_eq!(ints(">i8", "(2,)", &be), i32s(&[5, -1]));
    assert_eq!(ints("|i1", "(2,)", &[0xff, 3]), i32s(&[-1, 3]));
    assert_eq!(ints("|u1", "(2,)", &[0xff, 3]), i32s(&[255, 3]));
    assert_eq!(ints("<i2", "(1,)", &[0x00, 0x80]), i32s(&[-32768]));
    assert_eq!(ints(">u2", "(1,)", &[0xff, 0xfe]), i32s(&[65534]));
    assert_eq!(ints("<u4", "(1,)", &[1, 0, 0, 0x7f]), i32s(&[0x7f00_0001]));
    assert_eq!(ints("<u8", "(1,)", &le(&[12])), i32s(&[12]));
    let two_by_one = Array::from_i32([2, 1], vec![1, 2]).unwrap();
    assert_eq!(ints("<i8", "(2, 1)", &le(&[1, 2])), Ok(two_by_one));
}

#[test]
fn an_integer_outside_i32_is_refused_with_its_index() {
    let le = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>();
    assert_eq!(
        ints("<i8", "(3,)", &le(&[1, 2, 1 << 31])).unwrap_err(),
        "`labels.npy` holds 2147483648 at flat index 2, outside the range of i32 (kiln reads \
         integers as i32)"
    );
    let err = ints("<i8", "(2,)", &le(&[i64::MIN, 0])).unwrap_err();
    assert!(
        err.contains("holds -9223372036854775808 at flat index 0"),
        "{err}"
    );
    let err = ints("<u4", "(2,)", &[0, 0, 0, 0, 0, 0, 0, 0x80]).unwrap_err();
    assert!(err.contains("holds 2147483648 at flat index 1"), "{err}");
    let err = ints("<u8", "(1,)", &[0xff; 8]).unwrap_err();
    assert!(
        err.contains("holds 18446744073709551615 at flat index 0"),
        "{err}"
    );
}

#[test]
fn integer_sizes_count_in_the_truncation_check() {
    let err = ints("<i8", "(2,)", &[0; 12]).unwrap_err();
    assert!(err.contains("is truncated"), "{err}");
    assert!(
        err.contains("promises 144 bytes, the file holds 140"),
        "{err}"
    );
}

#[test]
fn fortran_order_is_refused() {
    let msg = read_err(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}",
        &[0; 16],
    );
    assert_eq!(
        msg,
        "`PATH` is in Fortran order; only C order is supported (save it with np.ascontiguousarray)"
    );
}

#[test]
fn truncated_data_is_refused() {
    let msg = read_err(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}",
        &[0; 31],
    );
    assert_eq!(
        msg,
        "`PATH` is truncated: its header promises 160 bytes, the file holds 159"
    );
}

#[test]
fn a_header_longer_than_the_file_is_refused_unread() {
    let dir = TempDir::new().unwrap();
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend(u32::MAX.to_le_bytes());
    bytes.extend(b"{'descr': '<f4'");
    let path = file_with(&dir, &bytes);
    let err = read_npy(&path).unwrap_err();
    assert!(
        matches!(
            err,
            NpyError::Truncated {
                expected: 4294967307,
                found: 27,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn huge_shapes_are_refused_before_allocating() {
    for shape in [
        "(65536, 65537)",
        "(0, 99999999999999999999999, 99999999999)",
        "(4294967296, 0)",
    ] {
        let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}}}");
        let msg = read_err(&dict, &[]);
        assert!(msg.contains("more than 2^31 elements"), "{msg}");
    }
    let msg = read_err(
        "{'descr': '|b1', 'fortran_order': False, 'shape': (65536, 32768)}",
        &[],
    );
    assert!(
        msg.contains("is truncated: its header promises 2147483776 bytes"),
        "{msg}"
    );
}

#[test]
fn bool_bytes_other_than_0_and_1_are_invalid() {
    let msg = read_err(
        "{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}",
        &[1, 2],
    );
    assert_eq!(
        msg,
        "`PATH` is not a valid npy file: invalid value for bool: 2"
    );
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let dir = TempDir::new().unwrap();
    let a = Array::scalar(DType::F32, 1.0);
    // The destination is a non-empty directory: the rename fails after the data was staged.
    let dest = dir.path().join("out.npy");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), b"x").unwrap();
    let err = write_npy(&dest, &a).unwrap_err();
    assert!(matches!(err, NpyError::Write { .. }), "{err}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    // The directory does not exist: nothing can be created.
    let err = write_npy(dir.path().join("missing/out.npy"), &a).unwrap_err();
    assert!(err.to_string().starts_with("cannot write `"), "{err}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_dropped_stage_is_removed_and_a_commit_replaces_the_old_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a.npy");
    write_npy(&path, &Array::scalar(DType::I32, 1.0)).unwrap();
    let staged = stage_npy(&path, &Array::scalar(DType::I32, 2.0)).unwrap();
    assert_eq!(staged.path(), path);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    drop(staged);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(read_npy(&path).unwrap(), Array::scalar(DType::I32, 1.0));
    stage_npy(&path, &Array::scalar(DType::I32, 3.0))
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(read_npy(&path).unwrap(), Array::scalar(DType::I32, 3.0));
}
