//! Writing the results of a run all or nothing.

use super::CliError;
use kiln_compiler::Array;
use kiln_runtime::npy::stage_npy;
use std::fs;
use std::path::{Path, PathBuf};

/// Writes each array to its path, creating `dir` (and its missing parents) first. Every file is
/// staged (written and synced under a temporary name) before any is renamed into place. On any
/// failure, everything this call created (temporary files, renamed files, directories) is
/// removed, so no partial output is left; a file it replaced is not restored.
pub fn write_all(dir: &Path, files: &[(PathBuf, &Array)]) -> Result<(), CliError> {
    let created = create_dirs(dir)?;
    let result = stage_and_commit(files);
    if result.is_err() {
        remove_dirs(&created);
    }
    result
}

/// Creates `dir` and its missing parents; gives the directories created, outermost first. On
/// failure nothing is left created.
fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    for (i, d) in missing.iter().enumerate() {
        if let Err(source) = fs::create_dir(d) {
            remove_dirs(&missing[..i]);
            return Err(CliError::CreateDir {
                path: d.clone(),
                source,
            });
        }
    }
    Ok(missing)
}

/// Removes directories created outermost first, innermost first.
fn remove_dirs(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// Writes `bytes` to `path` atomically (see `kiln_runtime::atomic`), creating its missing
/// directories.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir)?;
    }
    kiln_runtime::atomic::write(path, |w| w.write_all(bytes)).map_err(|source| CliError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn stage_and_commit(files: &[(PathBuf, &Array)]) -> Result<(), CliError> {
    // A staged file that is dropped uncommitted removes its temporary file.
    let staged = (files.iter())
        .map(|(path, a)| stage_npy(path, a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut committed = Vec::with_capacity(staged.len());
    for file in staged {
        let path = file.path().to_path_buf();
        if let Err(e) = file.commit() {
            for p in &committed {
                let _ = fs::remove_file(p);
            }
            return Err(e.into());
        }
        committed.push(path);
    }
    Ok(())
}
