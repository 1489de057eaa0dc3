//! CSV tables: a header row naming the columns, then one row per example of finite numbers.
//! Each CSV column becomes an `f64[rows]` column of the [`Dataset`], named by its header, in
//! the file's order; which columns are features and which the target is chosen later.
//!
//! Cells are split by the `csv` crate (RFC 4180: commas, double quotes, CRLF or LF line ends, a
//! leading UTF-8 byte-order mark skipped, blank lines skipped); whitespace around a cell is
//! trimmed. Every refusal is a [`DataError::Csv`] naming the file, the line and, for one cell,
//! its column, or a [`DataError::TooLarge`] for a file over [`MAX_CSV_BYTES`] or
//! [`MAX_CSV_CELLS`].

use super::files::{MAX_COLUMNS, read_file};
use super::{DataError, Dataset};
use csv::{ByteRecord, Position, ReaderBuilder, Trim};
use kiln_compiler::Array;
use std::collections::HashMap;
use std::path::Path;

/// The largest CSV file read, in bytes (1 GiB); a larger file is refused before it is read.
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// The most cells a CSV file may hold below its header (2^26, 512 MiB of `f64`); counted row
/// by row as the file is read, so a file over it is refused before more than that is stored.
pub const MAX_CSV_CELLS: u64 = 1 << 26;

/// The most characters of a cell quoted in an error.
const QUOTED_CHARS: usize = 40;

/// Reads the CSV file at `path` (see the module's documentation). Refused, naming the file:
/// a file over [`MAX_CSV_BYTES`] (before it is read) or [`MAX_CSV_CELLS`], an unreadable one,
/// and every case [`read_csv_bytes`] refuses.
pub fn read_csv(path: &Path) -> Result<Dataset, DataError> {
    let bytes = read_file(path, MAX_CSV_BYTES, "CSV")?;
    read_csv_bytes(&bytes, path)
}

/// The data set in `bytes`, the contents of a CSV file; errors name the file as `origin`.
/// Refused with the line and, for one cell, the column: an empty file; a header name that is
/// empty, repeated or not UTF-8; a header and no rows; a row with more or fewer cells than the
/// header has names; a cell that is empty, not UTF-8, not a number or not finite. Over
/// [`MAX_CSV_BYTES`], [`MAX_CSV_CELLS`] or [`MAX_COLUMNS`] columns it is
/// [`DataError::TooLarge`].
pub fn read_csv_bytes(bytes: &[u8], origin: &Path) -> Result<Dataset, DataError> {
    if bytes.len() as u64 > MAX_CSV_BYTES {
        return Err(DataError::TooLarge {
            path: origin.to_path_buf(),
            reason: format!(
                "{} bytes, more than the {MAX_CSV_BYTES} of a CSV file kiln reads",
                bytes.len()
            ),
        });
    }
    read_table(bytes, origin, MAX_CSV_CELLS)
}

/// [`read_csv_bytes`] with at most `max_cells` cells below the header.
pub(super) fn read_table(
    bytes: &[u8],
    origin: &Path,
    max_cells: u64,
) -> Result<Dataset, DataError> {
    let mut table = Table::new(bytes, origin);
    if !table.next()? {
        return Err(table.error(
            1,
            None,
            "the file is empty; it needs a header row naming the columns",
        ));
    }
    let names = table.header()?;
    let header_line = table.line();
    let mut columns = vec![Vec::new(); names.len()];
    let mut rows: u64 = 0;
    while table.next()? {
        rows += 1;
        table.check_row(&names, rows, max_cells)?;
        for (i, cell) in table.record.iter().enumerate() {
            columns[i].push(table.cell(cell, &names[i])?);
        }
    }
    if rows == 0 {
        return Err(table.error(
            header_line,
            None,
            "a header and no rows: the file holds no examples",
        ));
    }
    into_dataset(names, columns, origin)
}

/// A CSV file being read record by record.
struct Table<'a> {
    reader: csv::Reader<&'a [u8]>,
    record: ByteRecord,
    path: &'a Path,
    bytes: &'a [u8],
    /// The line the current record starts on, counting from 1.
    line: u64,
    /// The byte where `line` was counted to: the start of the current record.
    counted: usize,
}

impl<'a> Table<'a> {
    /// The reader of `bytes`: no header handling (the first record is read as the header), rows
    /// of any length (checked here, with kiln's message), every cell trimmed.
    fn new(bytes: &'a [u8], path: &'a Path) -> Table<'a> {
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(Trim::All)
            .from_reader(bytes);
        Table {
            reader,
            record: ByteRecord::new(),
            path,
            bytes,
            line: 1,
            counted: 0,
        }
    }

    /// Reads the next record into `record`; false at the end of the file.
    fn next(&mut self) -> Result<bool, DataError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                let byte = self.record.position().map_or(0, Position::byte);
                self.count_lines_to(byte);
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                let byte = e.position().map_or(0, Position::byte);
                let line = self.count_lines_to(byte);
                Err(self.error(line, None, e.to_string()))
            }
        }
    }

    /// Counts the lines to the record the reader reports at `byte`: the `csv` crate's own
    /// line count skips blank lines, and its byte offset is where it began to skip them.
    fn count_lines_to(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte).map_or(self.bytes.len(), |b| b.min(self.bytes.len()));
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start < self.counted {
            (self.line, self.counted) = (1, 0);
        }
        self.line += line_ends(&self.bytes[self.counted..start]);
        self.counted = start;
        self.line
    }

    /// The line the current record starts on, counting from 1.
    fn line(&self) -> u64 {
        self.line
    }

    /// [`DataError::Csv`] at `line` (and `column`) of this file.
    fn error(&self, line: u64, column: Option<&str>, reason: impl Into<String>) -> DataError {
        DataError::Csv {
            path: self.path.to_path_buf(),
            line,
            column: column.map(str::to_string),
            reason: reason.into(),
        }
    }

    /// The column names in the current record, the header: each non-empty, UTF-8 and unique,
    /// and at most [`MAX_COLUMNS`] of them.
    fn header(&self) -> Result<Vec<String>, DataError> {
        let line = self.line();
        if self.record.len() > MAX_COLUMNS {
            return Err(DataError::TooLarge {
                path: self.path.to_path_buf(),
                reason: format!(
                    "line {line}: the header names {} columns, more than the {MAX_COLUMNS} \
                     kiln reads",
                    self.record.len()
                ),
            });
        }
        let mut seen = HashMap::new();
        let mut names = Vec::with_capacity(self.record.len());
        for (i, cell) in self.record.iter().enumerate() {
            let name = std::str::from_utf8(cell).map_err(|_| {
                self.error(line, None, format!("column {}'s name is not UTF-8", i + 1))
            })?;
            if name.is_empty() {
                return Err(self.error(line, None, format!("column {} has no name", i + 1)));
            }
            if let Some(first) = seen.insert(name, i) {
                return Err(self.error(
                    line,
                    Some(name),
                    format!("the header names columns {} and {} alike", first + 1, i + 1),
                ));
            }
            names.push(name.to_string());
        }
        Ok(names)
    }

    /// Checks that the current record, row number `rows`, has one cell per name and keeps the
    /// table within `max_cells` cells.
    fn check_row(&self, names: &[String], rows: u64, max_cells: u64) -> Result<(), DataError> {
        let line = self.line();
        if self.record.len() != names.len() {
            return Err(self.error(
                line,
                None,
                format!(
                    "{} cells, but the header names {} columns",
                    self.record.len(),
                    names.len()
                ),
            ));
        }
        if rows.saturating_mul(names.len() as u64) > max_cells {
            return Err(DataError::TooLarge {
                path: self.path.to_path_buf(),
                reason: format!(
                    "line {line}: more than the {max_cells} cells of a CSV file kiln reads"
                ),
            });
        }
        Ok(())
    }

    /// The number in `cell` of column `column` in the current record: finite, its text trimmed.
    fn cell(&self, cell: &[u8], column: &str) -> Result<f64, DataError> {
        let fail = |reason: String| self.error(self.line(), Some(column), reason);
        let Ok(text) = std::str::from_utf8(cell) else {
            return Err(fail("the cell is not UTF-8 text".into()));
        };
        if text.is_empty() {
            return Err(fail(
                "the cell is empty (a missing value); every cell needs a number".into(),
            ));
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            Ok(_) => Err(fail(format!("`{}` is not a finite number", quoted(text)))),
            Err(_) => Err(fail(format!("`{}` is not a number", quoted(text)))),
        }
    }
}

/// How many lines end in `bytes`: at each `\n`, and at each `\r` not followed by `\n`.
fn line_ends(bytes: &[u8]) -> u64 {
    let ends = (bytes.iter().enumerate())
        .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && bytes.get(i + 1) != Some(&b'\n')));
    ends.count() as u64
}

/// `text`, cut to its first [`QUOTED_CHARS`] characters (marked by `...`).
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// The data set of `names` and their `columns` (all of one length) from the file at `path`.
fn into_dataset(
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    path: &Path,
) -> Result<Dataset, DataError> {
    let mismatch = |reason: String| DataError::Mismatch {
        path: path.to_path_buf(),
        reason,
    };
    let columns = (names.into_iter().zip(columns))
        .map(|(name, values)| {
            let array =
                Array::from_f64([values.len()], values).map_err(|e| mismatch(e.to_string()))?;
            Ok((name, array))
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    Dataset::new(columns).map_err(|e| mismatch(e.to_string()))
}

/// `, column `name`` for an error about one cell of column `name`, else nothing
/// ([`DataError::Csv`]'s message).
pub(super) fn in_column(column: Option<&str>) -> String {
    column.map_or_else(String::new, |c| format!(", column `{c}`"))
}
