//! Records the commit heartbeat is built from, for `heartbeat --version`:
//! `HEARTBEAT_COMMIT` from the environment when set (a package built from
//! a source tarball), else `git rev-parse --short=12 HEAD`, else
//! `unknown`. Also packs the binary's relative relocations.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HEARTBEAT_COMMIT");
    let commit = std::env::var("HEARTBEAT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=HEARTBEAT_COMMIT={}", commit.trim());
    // Relative relocations packed (DT_RELR, glibc 2.36 and binutils 2.38
    // on): the dynamic loader reads about 10 KiB of them at start instead
    // of half a megabyte, which stays resident.
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The short id of `HEAD`, asking cargo to run this again when `HEAD` or
/// the branch it names moves.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!(
            "cargo:rerun-if-changed={}",
            PathBuf::from(&dir).join("HEAD").display()
        );
    }
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        let common = PathBuf::from(common);
        println!("cargo:rerun-if-changed={}", common.join(branch).display());
        println!(
            "cargo:rerun-if-changed={}",
            common.join("packed-refs").display()
        );
    }
    Some(commit)
}
