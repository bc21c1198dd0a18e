//! sandbox-loader: runs real programs under the sentry's job control.
//!
//! Not built yet: see issue "`sandbox run --tty`". The crate exists so that the
//! workspace has its final shape and the CLI can depend on it.
pub use sandbox_sentry as sentry;
