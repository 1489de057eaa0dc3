//! What the report says about where it ran: the CPU, the date, the toolchain, the versions
//! of the crates compared, and how busy the machine was.

use std::path::PathBuf;
use std::process::Command;

/// The machine and toolchain of a run. Anything that cannot be read is `"unknown"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical cores (`processor` entries of `/proc/cpuinfo`).
    pub cores: usize,
    /// `MemTotal` of `/proc/meminfo`, in GiB.
    pub memory_gib: f64,
    /// The date and time, UTC.
    pub date: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The load averages (1, 5, 15 minutes) of `/proc/loadavg` when read.
    pub load: String,
}

const UNKNOWN: &str = "unknown";

impl Machine {
    /// Reads this machine's description now.
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = (cpuinfo.lines())
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or(UNKNOWN.into(), |(_, v)| v.trim().to_string());
        let cores = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = (meminfo.lines())
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores,
            memory_gib: memory_kib / (1024.0 * 1024.0),
            date: command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            rustc: command("rustc", &["--version"]),
            load: load(),
        }
    }
}

/// The load averages now, `"1m 5m 15m"`.
pub fn load() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = l.split_whitespace().take(3).collect();
    if parts.len() == 3 {
        parts.join(" ")
    } else {
        UNKNOWN.into()
    }
}

/// The first line `program args` prints, or `"unknown"`.
fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| UNKNOWN.into())
}

/// The version of each of `crates` the workspace's `Cargo.lock` pins (the first entry of
/// each name), `"unknown"` for those it does not list.
pub fn crate_versions(crates: &[&str]) -> Vec<(String, String)> {
    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    crates
        .iter()
        .map(|&name| {
            let key = format!("name = \"{name}\"");
            let version = (text.split("[[package]]"))
                .find(|p| p.lines().any(|l| l.trim() == key))
                .and_then(|p| p.lines().find_map(|l| l.trim().strip_prefix("version = ")))
                .map_or(UNKNOWN.into(), |v| v.trim_matches('"').to_string());
            (name.to_string(), version)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_names_the_compiler_crates() {
        let v = crate_versions(&["cranelift-codegen", "no-such-crate"]);
        assert!(v[0].1.starts_with("0.135"), "{v:?}");
        assert_eq!(v[1].1, "unknown");
    }

    #[test]
    fn this_machine_has_cores() {
        assert!(Machine::read().cores >= 1);
    }
}
