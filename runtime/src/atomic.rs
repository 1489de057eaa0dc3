//! Atomic file replacement: every file kiln writes (`.npy` arrays, checkpoints, plots) is written
//! under a temporary name beside its destination, synced, renamed over the destination, and the
//! directory synced. A reader, or a run restarted after a crash at any point, sees the old file
//! or the new one, never a part of either.
//!
//! A crash leaves at worst a hidden temporary file (`.NAME.PID-N.tmp`) beside the destination;
//! it is never read in place of the destination, and the next write of the same destination
//! removes it once the process that made it is gone (where `/proc` tells, as on Linux).

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
    remove_leftovers(dest);
    Ok(staged)
}

/// Removes the temporary files that writes of `dest` by processes no longer running left
/// behind (a crash mid-write). A process is known to be gone when `/proc` lists processes but
/// not it; without `/proc`, nothing is removed. A process id reused since the crash keeps a
/// leftover until a later write; another process's write in progress is never touched.
fn remove_leftovers(dest: &Path) {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let pid = (file.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u64>().is_ok().then_some(pid))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !proc.join(pid.to_string()).exists()
        {
            let _ = fs::remove_file(entry.path());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A write removes the leftovers of writes of the same file by processes that are gone,
    /// and nothing else: not a running process's, not its own, not another file's.
    #[test]
    fn a_write_removes_what_crashed_writes_of_its_file_left() {
        if !Path::new("/proc/self").exists() {
            return; // Without /proc nothing is removed; nothing to check.
        }
        let dir = tempfile::TempDir::new().unwrap();
        let dest = dir.path().join("ck.safetensors");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let names = [
            format!(".ck.safetensors.{gone}-0.tmp"),
            format!(".ck.safetensors.{gone}-7.tmp"),
            ".ck.safetensors.1-0.tmp".to_string(),
            format!(".ck.safetensors.{}-99.tmp", std::process::id()),
            format!(".other.safetensors.{gone}-0.tmp"),
            format!(".ck.safetensors.{gone}-x.tmp"),
        ];
        for n in &names {
            fs::write(dir.path().join(n), b"partial").unwrap();
        }
        write(&dest, |w| w.write_all(b"whole")).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut kept = vec!["ck.safetensors".to_string()];
        kept.extend(names[2..].iter().cloned());
        kept.sort();
        assert_eq!(left, kept);
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
    }
}
