//! Embeddings: rows of a learned table looked up by integer ids, as one `gather`.

use super::Layers;
use crate::{Init, Tensor};
use kiln_compiler::{DType, TypeErrorKind};

impl Layers<'_> {
    /// An embedding (PyTorch's `Embedding(vocab, dim)`): the rows of a parameter table
    /// `<name>.table: f32[vocab, dim]` at the `i32` `ids` of any shape `[...]`, giving
    /// `[..., dim]` (`ids` of shape `[]` give one row, `[dim]`). It is one `gather` of the
    /// table's rows, `table.gather(ids, 0)`, so its gradient is one `scatter_add` into the
    /// table: a row looked up `k` times receives the sum of those `k` gradients, and a row
    /// never looked up receives zero.
    ///
    /// The table is drawn from the standard normal distribution (mean 0, standard deviation 1),
    /// as PyTorch draws it, rather than uniform in `±1/sqrt(fan_in)` like [`Layers::linear`]'s
    /// weights: an output element is one table entry, not a sum over `fan_in` inputs, so there
    /// is no fan-in to scale by, and unit variance hands the next layer inputs of the scale its
    /// own fan-in initialization assumes (that of standardized features). Drawing as PyTorch
    /// does also keeps a model's first steps like PyTorch's, as for every layer here.
    ///
    /// Ids are data, known only at run time, so an id outside `0..vocab` is no error: the
    /// `gather` primitive clamps every index into range (docs/ir.md), in the interpreter and
    /// the compiled code alike, so a negative id reads row 0, an id of `vocab` or more reads
    /// row `vocab - 1`, and the gradient goes to that same row. Map ids into range first (to
    /// an "unknown" row, say) if that is not what the model means.
    ///
    /// Mistakes poison the result, and [`GraphBuilder::finish`](crate::GraphBuilder::finish)
    /// reports them at the caller's line: `ids` not `i32`, or `vocab` zero (a table with no
    /// row to look up).
    ///
    /// ```
    /// use kiln_frontend::layers::{Layers, Mode};
    /// use kiln_frontend::{DType, GraphBuilder};
    ///
    /// let b = GraphBuilder::new("tagger");
    /// let nn = Layers::new(&b, Mode::Train);
    /// let ids = b.input("ids", DType::I32, [8, 12]); // 8 sequences of 12 tokens
    /// let xs = nn.embedding("embed", &ids, 1000, 32);
    /// assert_eq!(xs.shape(), &[8, 12, 32]);
    /// let h = nn.lstm("lstm", &xs, 64).hidden;
    /// b.output("h", &h);
    /// let g = b.finish().unwrap();
    /// assert!(g.input("embed.table").is_some());
    /// ```
    #[track_caller]
    pub fn embedding(&self, name: &str, ids: &Tensor, vocab: usize, dim: usize) -> Tensor {
        self.embedding_typed(name, ids, vocab, dim, DType::F32)
    }

    /// [`Layers::embedding`] with a table (and so a result) of `dtype`, `f32` or `f64` (the
    /// gradient checks run in `f64`). Any other `dtype` poisons the result.
    #[track_caller]
    pub fn embedding_typed(
        &self,
        name: &str,
        ids: &Tensor,
        vocab: usize,
        dim: usize,
        dtype: DType,
    ) -> Tensor {
        if !dtype.is_float() {
            let kind = TypeErrorKind::UnsupportedDType {
                dtype,
                expected: "a float table (f32 or f64)",
            };
            return ids.fail("embedding", kind);
        }
        if ids.dtype() != DType::I32 {
            let kind = TypeErrorKind::UnsupportedDType {
                dtype: ids.dtype(),
                expected: "i32 ids",
            };
            return ids.fail("embedding", kind);
        }
        if vocab == 0 {
            let kind = TypeErrorKind::BadAttribute(
                "the table has no rows (vocab 0): there is nothing to look up".into(),
            );
            return ids.fail("embedding", kind);
        }
        let init = Init::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let table = self
            .builder
            .param_init(&format!("{name}.table"), dtype, [vocab, dim], init);
        table.gather(ids, 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::layers::{Layers, Mode};
    use crate::{BuildError, DType, GraphBuilder};
    use kiln_compiler::{Array, interp};
    use std::collections::HashMap;

    /// The lookup, in the interpreter, is the table's rows at the ids: ids of rank 2 give rank
    /// 3, repeated ids the same row, a scalar id one row, and ids outside `0..vocab` the
    /// nearest row (clamped, as the gather primitive does).
    #[test]
    fn an_embedding_is_the_tables_rows_at_the_ids() {
        let (vocab, dim) = (5, 3);
        let b = GraphBuilder::new("embed");
        let nn = Layers::new(&b, Mode::Train);
        let ids = b.input("ids", DType::I32, [2, 4]);
        let one = b.input("one", DType::I32, []);
        b.output("rows", &nn.embedding("e", &ids, vocab, dim));
        b.output(
            "row",
            &nn.embedding_typed("s", &one, vocab, dim, DType::F64),
        );
        let model = b.finish_model().unwrap();
        let table: Vec<f32> = (0..vocab * dim).map(|i| i as f32 * 0.5 - 3.0).collect();
        let wide: Vec<f64> = table.iter().map(|&v| v as f64 + 0.25).collect();
        let id_values = vec![0, 3, 3, 4, 1, -2, 9, 2];
        let values: HashMap<String, Array> = [
            ("ids", Array::from_i32([2, 4], id_values.clone()).unwrap()),
            ("one", Array::from_i32([], vec![2]).unwrap()),
            (
                "e.table",
                Array::from_f32([vocab, dim], table.clone()).unwrap(),
            ),
            (
                "s.table",
                Array::from_f64([vocab, dim], wide.clone()).unwrap(),
            ),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_string(), a))
        .collect();
        let e = interp::run(&model.graph, &values).unwrap();

        let rows = e.output("rows").unwrap();
        assert_eq!(rows.shape(), &[2, 4, dim]);
        assert_eq!(rows.dtype(), DType::F32);
        let want: Vec<f64> = id_values
            .iter()
            .flat_map(|&id| {
                let r = id.clamp(0, vocab as i32 - 1) as usize;
                table[r * dim..(r + 1) * dim].iter().map(|&v| v as f64)
            })
            .collect();
        assert_eq!(rows.to_f64_vec(), want);

        let row = e.output("row").unwrap();
        assert_eq!(row.shape(), &[dim]);
        assert_eq!(row.to_f64_vec(), wide[2 * dim..3 * dim]);

        // The table is a parameter, drawn from N(0, 1) by its initializer.
        let init = model.initial_values(&model.graph, 1);
        let (_, t) = init.iter().find(|(n, _)| n == "e.table").unwrap();
        assert_eq!(t.shape(), &[vocab, dim]);
        assert_eq!(t.dtype(), DType::F32);
    }

    /// A table drawn for a large vocabulary has mean about 0 and standard deviation about 1
    /// (20,000 draws: the sample mean's standard error is 0.007, the deviation's 0.005).
    #[test]
    fn the_table_is_drawn_from_the_standard_normal() {
        let b = GraphBuilder::new("embed");
        let nn = Layers::new(&b, Mode::Train);
        let ids = b.input("ids", DType::I32, [3]);
        b.output("y", &nn.embedding("e", &ids, 1000, 20));
        let model = b.finish_model().unwrap();
        let init = model.initial_values(&model.graph, 7);
        let (_, t) = init.iter().find(|(n, _)| n == "e.table").unwrap();
        let v = t.to_f64_vec();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.04, "mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 0.03, "std {}", var.sqrt());
    }

    /// Float ids, a vocabulary of 0 and an integer table are each a `BuildError` naming the
    /// embedding at the caller's line; nothing panics.
    #[test]
    fn embedding_mistakes_are_build_errors_at_the_callers_line() {
        type Mistake = fn(&Layers, &GraphBuilder) -> u32;
        let cases: [(&str, Mistake); 3] = [
            ("i32 ids", |nn, b| {
                let x = b.input("x", DType::F32, [2, 3]);
                let line = line!() + 1;
                let _ = nn.embedding("e", &x, 10, 4);
                line
            }),
            ("no rows", |nn, b| {
                let x = b.input("x", DType::I32, [2, 3]);
                let line = line!() + 1;
                let _ = nn.embedding("e", &x, 0, 4);
                line
            }),
            ("a float table", |nn, b| {
                let x = b.input("x", DType::I32, [2, 3]);
                let line = line!() + 1;
                let _ = nn.embedding_typed("e", &x, 10, 4, DType::I32);
                line
            }),
        ];
        for (what, f) in cases {
            let b = GraphBuilder::new("bad");
            let line = f(&Layers::new(&b, Mode::Train), &b);
            let err = b.finish().unwrap_err();
            let message = err.to_string();
            let BuildError::Type(e) = &err else {
                panic!("{what}: expected a type error, got {err}")
            };
            assert!(message.contains("in embedding at"), "{what}: {message}");
            assert!(message.contains(what), "{what}: {message}");
            let origin = e.origin.as_ref().unwrap();
            assert_eq!(origin.file.as_ref(), file!());
            assert_eq!(origin.line, line, "{what}: {message}");
        }
    }

    /// Ids that are poisoned (here, by a failed reshape) give a poisoned result and no error
    /// of the embedding's own: the first error, the reshape's, is the one reported.
    #[test]
    fn an_embedding_passes_poison_through() {
        let b = GraphBuilder::new("t");
        let nn = Layers::new(&b, Mode::Train);
        let ids = b.input("ids", DType::I32, [2, 10]).reshape(&[3, -1]);
        assert!(nn.embedding("e", &ids, 10, 4).node().is_none());
        let err = b.finish().unwrap_err().to_string();
        assert!(err.contains("in reshape at"), "{err}");
    }
}
