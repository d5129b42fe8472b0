//! What `heartbeat -V` and `heartbeat --version` print.
//!
//! `-V` prints `heartbeat 0.1.0`; `--version` (or `-V --verbose`) adds the
//! commit it was built from (recorded by `build.rs`) and the TLS library
//! the HTTPS checks use, with the version loaded at run time — what a bug
//! report needs.

/// The one-line version: `heartbeat 0.1.0`.
pub fn short() -> String {
    format!("heartbeat {}", env!("CARGO_PKG_VERSION"))
}

/// The version, the commit and the TLS library:
///
/// ```text
/// heartbeat 0.1.0
/// commit: 2c6a490e1f3b
/// tls: OpenSSL 3.0.17 1 Jul 2025 (through native-tls)
/// ```
pub fn long() -> String {
    format!(
        "{}\ncommit: {}\ntls: {} (through native-tls)",
        short(),
        env!("HEARTBEAT_COMMIT"),
        openssl::version::version()
    )
}
