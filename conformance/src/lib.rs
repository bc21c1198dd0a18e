//! Differential conformance for the sentry: scenarios (see [`scenario`]) run on real
//! Linux and on the model, traces ([`trace`]) compared.
pub mod generate;
pub mod linux_exec;
pub mod puppet;
pub mod runner;
pub mod scenario;
pub mod sentry_exec;
pub mod sys;
pub mod trace;
