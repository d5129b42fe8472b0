//! Fault injection for the tests of the real binary, compiled only where
//! `debug_assertions` are on (`cargo build`, `cargo test`): it is not in
//! the release binary (`cargo build --release`), so not in the package.
//!
//! It exists because some failures heartbeat must handle cannot be caused
//! from outside a healthy daemon. An action's thread only runs the hook
//! and reports how it went (see [`crate::exec::actions::run`], which never
//! panics), so no configuration, hook or signal makes it die; yet should
//! one die (a bug), the daemon must log it and exit with status 70
//! (`EX_SOFTWARE`), never hang waiting for a report that will not come.
//! The test that holds the binary to that sets
//! [`ACTION_THREAD_PANICS`]; the engine's side of it is tested in process
//! through [`Engine::set_action_spawner`].

use log::warn;

use crate::engine::Engine;
use crate::exec::actions;

/// The environment variable that names a group whose action threads
/// panic after running the hook and before reporting its end:
/// `HEARTBEAT_DEBUG_ACTION_THREAD_PANICS=web` (debug builds only).
pub const ACTION_THREAD_PANICS: &str = "HEARTBEAT_DEBUG_ACTION_THREAD_PANICS";

/// Installs the faults the environment asks for, saying so at WARNING.
pub fn inject(engine: &mut Engine) {
    let Some(group) = std::env::var_os(ACTION_THREAD_PANICS) else {
        return;
    };
    let group = group.to_string_lossy().into_owned();
    warn!(
        "debug build, {ACTION_THREAD_PANICS}={group}: the action threads of group {group:?} panic"
    );
    engine.set_action_spawner(Box::new(move |request, reply| {
        if request.group != group {
            return actions::spawn(request, reply);
        }
        let name = request.group.clone();
        actions::spawn(request, move |_report| {
            // Dropped by the unwinding, not called: the engine hears that
            // the action is lost.
            let _reply = reply;
            panic!("injected by {ACTION_THREAD_PANICS}: the action thread of group {name:?} dies before reporting");
        })
    }));
}
