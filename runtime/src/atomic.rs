//! Atomic file replacement: every file kiln writes (`.npy` arrays, checkpoints, plots) is written
//! under a temporary name beside its destination, synced, renamed over the destination, and the
//! directory synced. A reader, or a run restarted after a crash at any point, sees the old file
//! or the new one, never a part of either.
//!
//! A crash leaves at worst a hidden temporary file (`.NAME.PID-N.tmp`) beside the destination;
//! it is never read in place of the destination.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The points at which [`write_through`] can stop before the end of an atomic write, in order;
/// tests simulate a crash at each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The contents are written to the temporary file (not yet synced).
    Written,
    /// The temporary file is synced to disk.
    Synced,
    /// The temporary file is renamed over the destination (the directory not yet synced).
    Renamed,
}

impl Step {
    /// Every step, in order.
    #[cfg(test)]
    pub(crate) const ALL: [Step; 3] = [Step::Written, Step::Synced, Step::Renamed];
}

/// A temporary file beside its destination. Dropped before [`Staged::rename`], it removes the
/// temporary file.
#[derive(Debug)]
pub(crate) struct Staged {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    renamed: bool,
}

/// Writes a file at `dest` atomically: `write` gets a buffered writer to the temporary file.
pub fn write(dest: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    write_through(dest, write, None).map(drop)
}

/// Runs the steps of an atomic write of `dest`, in order: create a temporary file, `write` it
/// (through a buffer), sync it, rename it over `dest`, sync the directory; but stops after
/// `stop_after` if given. Gives the staged file, renamed or not. On error, the temporary file
/// is removed.
pub(crate) fn write_through(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    stop_after: Option<Step>,
) -> io::Result<Staged> {
    let mut staged = Staged::create(dest)?;
    {
        let mut w = BufWriter::new(&staged.file);
        write(&mut w)?;
        w.flush()?;
    }
    if stop_after == Some(Step::Written) {
        return Ok(staged);
    }
    staged.file.sync_all()?;
    if stop_after == Some(Step::Synced) {
        return Ok(staged);
    }
    staged.rename()?;
    if stop_after == Some(Step::Renamed) {
        return Ok(staged);
    }
    staged.sync_dir();
    Ok(staged)
}

impl Staged {
    /// Creates a new, uniquely named, empty temporary file in the directory of `dest`.
    fn create(dest: &Path) -> io::Result<Staged> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
        let unique = format!(
            ".{}.{}-{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let temp = dest.with_file_name(unique);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(Staged {
            file,
            temp,
            dest: dest.to_path_buf(),
            renamed: false,
        })
    }

    /// The destination.
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }

    /// Renames the temporary file over the destination, atomically replacing any file there.
    pub(crate) fn rename(&mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.dest)?;
        self.renamed = true;
        Ok(())
    }

    /// Syncs the destination's directory, making the rename durable. The file is already in
    /// place and complete, so a directory that cannot be synced (some file systems refuse) is
    /// no error.
    pub(crate) fn sync_dir(&self) {
        if let Some(dir) = self.dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}
