use super::*;
use kiln_compiler::text::parse;
use std::fs;
use tempfile::TempDir;

fn f32s(shape: &[usize], v: &[f32]) -> Array {
    Array::from_f32(shape, v.to_vec()).unwrap()
}

/// A checkpoint with every dtype, awkward floats, empty and scalar tensors, and metadata whose
/// every number is at an edge.
fn sample() -> Checkpoint {
    let odd = [
        0.1,
        -0.0,
        f32::MIN_POSITIVE / 8.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_1234),
    ];
    let tensors = vec![
        ("fc1.w".to_string(), f32s(&[2, 3], &odd)),
        ("fc1.w.m".to_string(), f32s(&[2, 3], &[0.0; 6])),
        (
            "fc1.b".to_string(),
            Array::from_f64(
                [3],
                vec![1e-310, -f64::MAX, f64::from_bits(0xfff8_0000_0000_0001)],
            )
            .unwrap(),
        ),
        ("optimizer.step".to_string(), Array::scalar(DType::I32, 7.0)),
        (
            "labels".to_string(),
            Array::from_i32([4], vec![i32::MIN, -1, 0, i32::MAX]).unwrap(),
        ),
        (
            "mask".to_string(),
            Array::from_bool([2, 2], vec![true, false, false, true]).unwrap(),
        ),
        ("empty".to_string(), f32s(&[0, 3], &[])),
    ];
    let record = |epoch, loss: f64| EpochRecord {
        epoch,
        train: Metrics::new(vec![("loss".into(), loss), ("accuracy".into(), 0.1 + 0.2)]),
        test: Metrics::new(vec![
            ("loss".into(), loss * 1.000_000_000_000_1),
            ("accuracy".into(), 1.0 / 3.0),
            ("r2".into(), -0.0),
        ]),
        seconds: 12.345_678_901_234_567,
    };
    Checkpoint {
        tensors,
        meta: Metadata {
            model: "mlp".into(),
            width: Some(256),
            graph_hash: "0123456789abcdef".into(),
            optimizer: "adam".into(),
            hyperparameters: vec![
                ("lr".into(), 1e-3),
                ("beta1".into(), 0.9),
                ("eps".into(), 1e-8),
                ("weight_decay".into(), -0.0),
            ],
            schedule: "cosine".into(),
            augment: 2,
            batch_size: 64,
            seed: u64::MAX,
            epoch: 3,
            step: u64::MAX - 1,
            history: vec![
                record(1, std::f64::consts::LN_10),
                record(2, f64::NAN),
                record(3, f64::INFINITY),
                record(4, 5e-324),
            ],
            graphs: vec![
                (4, parse(EVAL_GRAPH).unwrap()),
                (1, parse(&EVAL_GRAPH.replace("[4,", "[1,")).unwrap()),
            ],
            task: "regress".into(),
            target: "progression".into(),
            features: vec!["age".into(), "body mass, index".into()],
            ..Metadata::default()
        },
        standardization: Standardization::from_parts(vec![(
            "x".into(),
            Array::from_f64([2], vec![0.5, -1e300]).unwrap(),
            Array::from_f64([2], vec![2.0, f64::MIN_POSITIVE]).unwrap(),
        )])
        .unwrap(),
    }
}

/// The evaluation graph of [`sample`], at 4 rows: reads its param `fc1.w`.
const EVAL_GRAPH: &str = "graph eval {
  %x = input \"x\" : f32[4,2]
  %w = param \"fc1.w\" : f32[2,3]
  %0 = dot %x, %w : f32[4,3]
  output prediction = %0
}
";

/// Asserts `a` and `b` hold bit-equal tensors (in any order) and equal metadata; `{:?}` of an
/// `f64` is the shortest text that reads back to the same bits, so equal texts are equal
/// values.
fn assert_same(a: &Checkpoint, b: &Checkpoint) {
    let sorted = |c: &Checkpoint| {
        let mut t = c.tensors.clone();
        t.sort_by(|x, y| x.0.cmp(&y.0));
        t
    };
    assert_eq!(sorted(a), sorted(b));
    assert_eq!(format!("{:?}", a.meta), format!("{:?}", b.meta));
    assert_eq!(a.standardization, b.standardization);
}

fn saved(dir: &TempDir, ck: &Checkpoint) -> PathBuf {
    let path = dir.path().join("ck.safetensors");
    save(&path, ck).unwrap();
    path
}

fn invalid_reason(path: &Path) -> String {
    match load(path) {
        Err(CheckpointError::Invalid { path: p, reason }) => {
            assert_eq!(p, path);
            reason
        }
        other => panic!("expected an invalid checkpoint, got {other:?}"),
    }
}

#[test]
fn every_dtype_and_the_metadata_round_trip_bit_for_bit() {
    let dir = TempDir::new().unwrap();
    let ck = sample();
    let path = saved(&dir, &ck);
    let back = load(&path).unwrap();
    assert_same(&ck, &back);
    let names: Vec<&str> = back.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.is_sorted(), "{names:?}");
    // The NaN payloads of the tensors survive; bits are compared, not values.
    let w = back.tensor("fc1.w").unwrap().as_f32().unwrap();
    assert_eq!(w[5].to_bits(), 0x7fc0_1234);
    assert_eq!(w[1].to_bits(), (-0.0f32).to_bits());
    let b = back.tensor("fc1.b").unwrap().as_f64().unwrap();
    assert_eq!(b[2].to_bits(), 0xfff8_0000_0000_0001);
    // Metadata floats, by bits.
    let h = &back.meta.history;
    assert_eq!(h[0].train("accuracy").to_bits(), (0.1f64 + 0.2).to_bits());
    assert!(h[1].train("loss").is_nan());
    assert_eq!(h[3].train("loss").to_bits(), 1);
    assert_eq!(h[3].test("r2").to_bits(), (-0.0f64).to_bits());
    assert_eq!(
        back.meta.hyperparameters[3].1.to_bits(),
        (-0.0f64).to_bits()
    );
    assert_eq!(back.meta.kiln_version, KILN_VERSION);
    assert_eq!((back.meta.seed, back.meta.step), (u64::MAX, u64::MAX - 1));
    // No width, no hyperparameters, no history, no tensors.
    let bare = Checkpoint {
        tensors: vec![],
        meta: Metadata::default(),
        standardization: Standardization::default(),
    };
    save(&path, &bare).unwrap();
    assert_same(&bare, &load(&path).unwrap());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn the_metadata_is_readable_text() {
    let dir = TempDir::new().unwrap();
    let path = saved(&dir, &sample());
    let bytes = fs::read(&path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let map = header.metadata().as_ref().unwrap();
    assert_eq!(map["format"], "kiln-checkpoint 2");
    assert_eq!(map["width"], "256");
    assert_eq!(map["schedule"], "cosine");
    assert_eq!(map["augment"], "2");
    assert_eq!(
        map["hyperparameters"],
        "lr=0.001 beta1=0.9 eps=1e-8 weight_decay=-0.0"
    );
    assert_eq!(
        map["history"].lines().next().unwrap(),
        "epoch=1 seconds=12.345678901234567 train.loss=2.302585092994046 \
         train.accuracy=0.30000000000000004 test.loss=2.302585092994276 \
         test.accuracy=0.3333333333333333 test.r2=-0.0"
    );
    assert_eq!(map["graph.eval.4"], EVAL_GRAPH);
    assert_eq!(map["features"], "age\nbody mass, index");
    assert_eq!(map["standardize"], "x");
}

#[test]
fn a_version_1_checkpoint_still_loads_with_its_history_as_metrics() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v1.safetensors");
    raw_safetensors(&path, Dtype::F32, vec![0; 4], &V1_METADATA);
    let ck = load(&path).unwrap();
    let r = &ck.meta.history[0];
    assert_eq!((r.epoch, r.seconds), (1, 1.5));
    assert_eq!((r.train("loss"), r.train("accuracy")), (0.5, 0.75));
    assert_eq!((r.test("loss"), r.test("accuracy")), (0.25, 0.875));
    assert!(ck.meta.graphs.is_empty() && ck.standardization.is_empty());
}

/// The metadata of a checkpoint kiln wrote before format 2.
const V1_METADATA: [(&str, &str); 14] = [
    ("format", "kiln-checkpoint 1"),
    ("model", "mlp"),
    ("width", "none"),
    ("graph_hash", "0123456789abcdef"),
    ("optimizer", "sgd"),
    ("hyperparameters", "lr=0.1"),
    ("schedule", "constant"),
    ("augment", "0"),
    ("batch_size", "64"),
    ("seed", "0"),
    ("epoch", "1"),
    ("step", "125"),
    ("kiln_version", "0.1.0"),
    ("history", "1 0.5 0.75 0.25 0.875 1.5"),
];

#[test]
fn a_checkpoint_whose_graph_does_not_parse_or_fit_its_tensors_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut ck = sample();
    ck.tensors.retain(|(n, _)| n != "fc1.w");
    let path = saved(&dir, &ck);
    let reason = invalid_reason(&path);
    assert!(
        reason.contains("metadata `graph.eval.1`") || reason.contains("graph.eval.4"),
        "{reason}"
    );
    assert!(
        reason.contains("reads `fc1.w`, a tensor the file lacks"),
        "{reason}"
    );
    let mut ck = sample();
    ck.tensors[0].1 = f32s(&[3, 2], &[0.0; 6]);
    ck.tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let path = saved(&dir, &ck);
    let reason = invalid_reason(&path);
    assert!(
        reason.contains("reads `fc1.w` as f32[2,3], the file holds f32[3,2]"),
        "{reason}"
    );
    // Text that is not a graph.
    let mut metadata = V1_METADATA.to_vec();
    metadata[0] = ("format", "kiln-checkpoint 2");
    metadata[13] = ("history", "");
    metadata.push(("graph.eval.4", "graph broken {"));
    let path = dir.path().join("broken.safetensors");
    raw_safetensors(&path, Dtype::F32, vec![0; 4], &metadata);
    let reason = invalid_reason(&path);
    assert!(
        reason.contains("graph.eval.4`: the graph does not parse"),
        "{reason}"
    );
}

#[test]
fn fnv1a_matches_the_reference_values() {
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn graph_hash_ignores_locations_and_sees_every_other_change() {
    let text = |loc: &str, width: usize| {
        format!(
            "graph g {{\n  %x = input \"x\" : f32[4,3]\n  %w = param \"w\" : f32[3,{width}]\n  \
             %0 = dot %x, %w : f32[4,{width}]{loc}\n  output out = %0\n}}\n"
        )
    };
    let hash = |src: String| graph_hash(&parse(&src).unwrap());
    let plain = hash(text("", 2));
    assert_eq!(plain.len(), 16);
    assert_eq!(plain, hash(text(" loc(\"model.rs\":3:7)", 2)));
    assert_ne!(plain, hash(text("", 5)));
    // Pinned: a change means checkpoints saved before it no longer match their graphs.
    assert_eq!(plain, "679522ad05c4ebd3");
}

#[test]
fn a_truncated_file_is_refused_at_every_length() {
    let dir = TempDir::new().unwrap();
    let path = saved(&dir, &sample());
    let bytes = fs::read(&path).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for len in 0..bytes.len() {
        fs::write(&path, &bytes[..len]).unwrap();
        let reason = invalid_reason(&path);
        let expected = if len < 8 {
            "fewer than a safetensors header's 8"
        } else if len < header_end {
            "(truncated, or not a safetensors file)"
        } else {
            "(truncated, or bytes added)"
        };
        assert!(reason.contains(expected), "{len}: {reason}");
    }
    // One byte too many is refused as well.
    let mut longer = bytes.clone();
    longer.push(0);
    fs::write(&path, &longer).unwrap();
    assert!(invalid_reason(&path).contains("(truncated, or bytes added)"));
}

#[test]
fn a_header_claiming_more_than_the_file_is_refused_unread() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("ck.safetensors");
    for (claim, expected) in [
        (u64::MAX, "more than the 100000000 kiln reads"),
        (MAX_HEADER_BYTES + 1, "more than the 100000000 kiln reads"),
        (MAX_HEADER_BYTES, "and holds 10 bytes in all"),
        (3, "and holds 10 bytes in all"),
    ] {
        let mut bytes = claim.to_le_bytes().to_vec();
        bytes.extend(b"{}");
        fs::write(&path, &bytes).unwrap();
        let reason = invalid_reason(&path);
        let claims = format!("it claims a header of {claim} bytes");
        assert!(reason.starts_with(&claims), "{reason}");
        assert!(reason.contains(expected), "{reason}");
    }
    let err = load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!(
        "`{}` is not a valid kiln checkpoint: ",
        path.display()
    )));
}

#[test]
fn flipped_header_bytes_are_refused_or_load_without_panicking() {
    let dir = TempDir::new().unwrap();
    let path = saved(&dir, &sample());
    let bytes = fs::read(&path).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let masks = [0x01, 0x20, 0x80, 0xff];
    let mut loaded = 0;
    for i in 0..header_end {
        for mask in masks {
            let mut b = bytes.clone();
            b[i] ^= mask;
            loaded += usize::from(load_bytes(&b, &path).is_ok());
        }
    }
    // Some flips keep a valid file (a changed letter of a name or a value), most do not.
    let cases = header_end * masks.len();
    assert!(loaded > 0 && loaded < cases / 2, "{loaded} of {cases}");
}

/// xorshift64: a fixed-seed source of random numbers for the fuzz loop.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let dir = TempDir::new().unwrap();
    let path = saved(&dir, &sample());
    let bytes = fs::read(&path).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            // Mostly the header, where the structure is.
            let i = if rng.below(4) == 0 {
                rng.below(b.len())
            } else {
                rng.below(header_end)
            };
            match rng.below(4) {
                0 => b[i] = rng.below(256) as u8,
                1 => b[i] = b"{}[]\",:0123456789-e"[rng.below(19)],
                2 => {
                    b.remove(i);
                }
                _ => b.insert(i, rng.below(256) as u8),
            }
        }
        let _ = load_bytes(&b, &path);
    }
}

/// A safetensors file of one tensor with the raw `bytes`, and `metadata`.
fn raw_safetensors(path: &Path, dtype: Dtype, bytes: Vec<u8>, metadata: &[(&str, &str)]) {
    struct Raw(Dtype, Vec<usize>, Vec<u8>);
    impl View for &Raw {
        fn dtype(&self) -> Dtype {
            self.0
        }
        fn shape(&self) -> &[usize] {
            &self.1
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&self.2)
        }
        fn data_len(&self) -> usize {
            self.2.len()
        }
    }
    let raw = Raw(dtype, vec![bytes.len() * 8 / dtype.bitsize()], bytes);
    let metadata = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|&(k, v)| (k.into(), v.into()))
            .collect()
    });
    fs::write(
        path,
        safetensors::serialize([("t", &raw)], metadata).unwrap(),
    )
    .unwrap();
}

#[test]
fn foreign_and_damaged_files_are_refused_with_the_cause() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("ck.safetensors");
    let err = load(&path).unwrap_err();
    assert!(matches!(err, CheckpointError::Read { .. }), "{err}");
    assert!(
        err.to_string().starts_with("cannot read checkpoint `"),
        "{err}"
    );

    crate::npy::write_npy(&path, &Array::scalar(DType::F32, 1.0)).unwrap();
    assert!(invalid_reason(&path).contains("not a safetensors file"));

    raw_safetensors(&path, Dtype::F16, vec![0; 4], &[]);
    assert_eq!(
        invalid_reason(&path),
        "it is a safetensors file without metadata, not a kiln checkpoint"
    );
    raw_safetensors(&path, Dtype::F16, vec![0; 4], &[("license", "mit")]);
    assert_eq!(
        invalid_reason(&path),
        "it is a safetensors file, not a kiln checkpoint"
    );
    raw_safetensors(
        &path,
        Dtype::F16,
        vec![0; 4],
        &[("format", "kiln-checkpoint 9")],
    );
    assert_eq!(
        invalid_reason(&path),
        "its format is `kiln-checkpoint 9`; this kiln reads `kiln-checkpoint 2` and `kiln-checkpoint 1`"
    );

    // A kiln checkpoint with one thing wrong (and no graph or standardization, whose
    // tensors the raw files below lack).
    let mut plain = sample();
    plain.meta.graphs.clear();
    plain.standardization = Standardization::default();
    let good = encode_metadata(&plain);
    let with = |key: &str, value: Option<&str>| -> Vec<(String, String)> {
        let mut m: Vec<(String, String)> = good
            .iter()
            .filter(|&(k, _)| k != key)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        m.extend(value.map(|v| (key.to_string(), v.to_string())));
        m
    };
    let cases = [
        (with("epoch", None), "its metadata has no `epoch`"),
        (
            with("seed", Some("-1")),
            "metadata `seed` is not a whole number: `-1`",
        ),
        (
            with("width", Some("wide")),
            "metadata `width` is not a whole number or `none`: `wide`",
        ),
        (
            with("hyperparameters", Some("lr=fast")),
            "metadata `hyperparameters` is not `name=value` pairs separated by spaces: `lr=fast`",
        ),
        (
            with(
                "history",
                Some("epoch=1 seconds=2 train.loss=3\nepoch=2 loss"),
            ),
            "line 2 of metadata `history` is not `epoch=N seconds=S` and `split.metric=value`s: \
             `epoch=2 loss`",
        ),
        (
            with("history", Some("epoch=1 seconds=2 valid.loss=3")),
            "line 1 of metadata `history` is not `epoch=N seconds=S` and `split.metric=value`s: \
             `epoch=1 seconds=2 valid.loss=3`",
        ),
        (
            with("history", Some("epoch=1 seconds=2 test.loss=3 test.loss=4")),
            "line 1 of metadata `history` is not `epoch=N seconds=S` and `split.metric=value`s: \
             `epoch=1 seconds=2 test.loss=3 test.loss=4`",
        ),
    ];
    for (metadata, expected) in cases {
        let m: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (&**k, &**v)).collect();
        raw_safetensors(&path, Dtype::F32, vec![0; 8], &m);
        assert_eq!(invalid_reason(&path), expected);
    }
    let m: Vec<(&str, &str)> = good.iter().map(|(k, v)| (&**k, &**v)).collect();
    raw_safetensors(&path, Dtype::BOOL, vec![0, 1, 1, 2], &m);
    assert_eq!(
        invalid_reason(&path),
        "tensor `t` holds the byte 2 as a bool"
    );
    raw_safetensors(&path, Dtype::F16, vec![0; 4], &m);
    assert_eq!(
        invalid_reason(&path),
        "tensor `t` is of type F16; kiln reads F32, F64, I32 and BOOL"
    );
    raw_safetensors(&path, Dtype::I32, vec![0; 8], &m);
    assert!(load(&path).is_ok());
}

/// The model's state as `Executable::state_names` gives it.
fn state_of(ck: &Checkpoint) -> Vec<(String, Type)> {
    ck.tensors
        .iter()
        .map(|(n, a)| (n.clone(), a.ty()))
        .collect()
}

#[test]
fn check_matches_names_what_differs() {
    let ck = sample();
    let state = state_of(&ck);
    let run = ck.meta.clone();
    ck.check_matches(&run, &Field::ALL, &state).unwrap();

    let field = |f: fn(&mut Metadata)| {
        let mut m = run.clone();
        f(&mut m);
        ck.check_matches(&m, &Field::ALL, &state)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        field(|m| m.model = "lenet".into()),
        "its model is `mlp`, not `lenet`"
    );
    assert_eq!(field(|m| m.width = None), "its width is `256`, not `none`");
    assert_eq!(
        field(|m| m.graph_hash = "fedcba9876543210".into()),
        "its graph hash is `0123456789abcdef`, not `fedcba9876543210`"
    );
    assert_eq!(
        field(|m| m.optimizer = "sgd".into()),
        "its optimizer is `adam`, not `sgd`"
    );
    assert_eq!(
        field(|m| m.hyperparameters[0].1 = 0.01),
        "its hyperparameter list is `lr=0.001 beta1=0.9 eps=1e-8 weight_decay=-0.0`, \
         not `lr=0.01 beta1=0.9 eps=1e-8 weight_decay=-0.0`"
    );
    assert_eq!(
        field(|m| m.schedule = "constant".into()),
        "its learning-rate schedule is `cosine`, not `constant`"
    );
    assert_eq!(
        field(|m| m.augment = 0),
        "its augmentation shift is `2`, not `0`"
    );
    assert_eq!(
        field(|m| m.batch_size = 32),
        "its batch size is `64`, not `32`"
    );
    assert_eq!(
        field(|m| m.seed = 1),
        "its seed is `18446744073709551615`, not `1`"
    );

    // Only the fields asked for are compared; progress never is.
    let mut eval = Metadata {
        model: "mlp".into(),
        width: Some(256),
        batch_size: 1000,
        ..Metadata::default()
    };
    ck.check_matches(&eval, &[Field::Model, Field::Width], &state)
        .unwrap();
    eval.model = "lenet".into();
    let err = ck
        .check_matches(&eval, &[Field::Model, Field::Width], &state)
        .unwrap_err()
        .at("runs/ck.safetensors");
    assert_eq!(
        err.to_string(),
        "checkpoint `runs/ck.safetensors` does not fit this run: its model is `mlp`, not `lenet`"
    );

    // Tensors: the model's must all be there with their types; extra ones are allowed.
    let params: Vec<(String, Type)> = vec![("fc1.w".into(), Type::new(DType::F32, [2, 3]))];
    ck.check_matches(&run, &[], &params).unwrap();
    let mut missing = state.clone();
    missing.push(("fc2.w".into(), Type::new(DType::F32, [3, 3])));
    assert_eq!(
        ck.check_matches(&run, &[], &missing).unwrap_err(),
        Mismatch::MissingTensor("fc2.w".into())
    );
    assert_eq!(
        ck.check_matches(&run, &[], &missing)
            .unwrap_err()
            .to_string(),
        "it has no tensor `fc2.w`"
    );
    let shape = vec![("fc1.w".into(), Type::new(DType::F32, [3, 2]))];
    assert_eq!(
        ck.check_matches(&run, &[], &shape).unwrap_err().to_string(),
        "tensor `fc1.w` is f32[2,3] in the checkpoint, f32[3,2] in the model"
    );
    let dtype = vec![("optimizer.step".into(), Type::scalar(DType::F32))];
    assert_eq!(
        ck.check_matches(&run, &[], &dtype).unwrap_err().to_string(),
        "tensor `optimizer.step` is i32[] in the checkpoint, f32[] in the model"
    );
}

#[test]
fn a_save_interrupted_at_any_step_leaves_the_previous_checkpoint() {
    let old = Checkpoint {
        tensors: vec![("w".into(), f32s(&[2], &[1.0, 2.0]))],
        meta: Metadata {
            model: "mlp".into(),
            epoch: 1,
            ..Metadata::default()
        },
        standardization: Standardization::default(),
    };
    let new = sample();
    for step in Step::ALL {
        let dir = TempDir::new().unwrap();
        let path = saved(&dir, &old);
        // A crash: the process stops after `step` and cleans nothing up.
        std::mem::forget(save_through(&path, &new, Some(step)).unwrap());
        let renamed = step == Step::Renamed;
        let expected = if renamed { &new } else { &old };
        assert_same(expected, &load(&path).unwrap());
        // At most a hidden temporary file is left beside the checkpoint; it is never loaded.
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.last().unwrap(), "ck.safetensors", "{step:?}");
        let strays = &names[..names.len() - 1];
        assert_eq!(strays.len(), usize::from(!renamed), "{step:?}");
        for stray in strays {
            assert!(stray.starts_with(".ck.safetensors.") && stray.ends_with(".tmp"));
            // It holds the new checkpoint, written before the crash; only `path` is loaded.
            assert_same(&new, &load(dir.path().join(stray)).unwrap());
        }
        // The restarted run saves over it.
        save(&path, &new).unwrap();
        assert_same(&new, &load(&path).unwrap());
    }
}

#[test]
fn a_failed_save_leaves_the_previous_checkpoint_and_nothing_else() {
    let dir = TempDir::new().unwrap();
    let old = sample();
    let path = saved(&dir, &old);
    let unsavable = |ck: &Checkpoint| match save(&path, ck).unwrap_err() {
        CheckpointError::Unsavable { reason, .. } => reason,
        other => panic!("{other}"),
    };
    let mut twice = sample();
    twice.tensors.push(("fc1.w".into(), f32s(&[1], &[0.0])));
    assert_eq!(unsavable(&twice), "two tensors are named `fc1.w`");
    let mut reserved = sample();
    reserved.tensors[0].0 = "__metadata__".into();
    assert!(unsavable(&reserved).contains("`__metadata__`"));
    for name in ["", "learning rate", "lr=2"] {
        let mut bad = sample();
        bad.meta.hyperparameters[0].0 = name.into();
        assert_eq!(
            unsavable(&bad),
            format!("hyperparameter name `{name}` is empty or holds whitespace or `=`")
        );
    }
    // Not writable: the destination is a directory, or in a missing one.
    let err = save(dir.path(), &old).unwrap_err();
    assert!(matches!(err, CheckpointError::Write { .. }), "{err}");
    let err = save(dir.path().join("missing/ck.safetensors"), &old).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot write checkpoint `"),
        "{err}"
    );
    assert_same(&old, &load(&path).unwrap());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn tensors_claiming_more_than_the_file_holds_are_refused_unallocated() {
    // 2^48 elements in 8 bytes of data, and a shape whose element count overflows.
    for shape in ["[65536,65536,65536]", "[4294967296,4294967296,4294967296]"] {
        let header = format!(
            "{{\"__metadata__\":{{\"format\":\"kiln-checkpoint 1\"}},\
             \"w\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,8]}}}}"
        );
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&[0; 8]);
        let e = load_bytes(&b, "ck").unwrap_err().to_string();
        assert!(
            e.starts_with("`ck` is not a valid kiln checkpoint: "),
            "{e}"
        );
    }
}
