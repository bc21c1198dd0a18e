//! Emulated line discipline (to be written).
