//! `conformance-puppet`: the process the Linux executor runs scenarios with (see
//! `sandbox_conformance::puppet`). No Rust runtime start-up: `main` is the C entry
//! point, so signal dispositions and descriptors are exactly what the scenario made them.
#![no_main]

#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    sandbox_conformance::puppet::main()
}
