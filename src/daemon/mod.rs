//! The Unix plumbing of a daemon: one instance per [`pidfile`], [`detach`]ing
//! with the start-up outcome reported to the launching command, inherited
//! [`descriptors`], dropping [`privileges`], refusing files others could
//! write ([`trust`]), [`signals`] (stop, reload, reopen) and systemd
//! readiness ([`notify`]).

pub mod descriptors;
pub mod detach;
pub mod notify;
pub mod pidfile;
pub mod privileges;
pub mod signals;
pub mod trust;
