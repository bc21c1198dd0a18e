//! The `sandbox` command's library: long-running sandboxes (`sandbox run -d` and the
//! lifecycle verbs). The supervisor ([`daemon`]) and the clients ([`client`]) speak
//! the control protocol of [`protocol`]; the state directory is [`state`]; `kill
//! --mode all` freezes through [`freezer`].

pub mod client;
pub mod daemon;
pub mod freezer;
pub mod oci;
pub mod protocol;
pub mod state;
mod sys;
