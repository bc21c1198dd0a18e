//! The `sandbox` binary is linked statically (`.cargo/rustc-wrapper`): it has no
//! program interpreter (`PT_INTERP`), so nothing runs before its own start-up code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const PT_INTERP: u32 = 3;

/// The program header types of a little-endian ELF64 file.
fn program_header_types(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not ELF64");
    assert_eq!(elf[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| {
            let o = phoff + i * phentsize;
            u32::from_le_bytes(elf[o..o + 4].try_into().unwrap())
        })
        .collect()
}

#[test]
fn the_sandbox_binary_has_no_dynamic_loader() {
    // The wrapper links dynamically where the C library has no static archive, and a
    // RUSTC_WRAPPER of the caller's replaces it: then there is nothing to check.
    let libc_a = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-print-file-name=libc.a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !std::path::Path::new(&libc_a).is_file() || std::env::var_os("RUSTC_WRAPPER").is_some() {
        println!("SKIPPED (no static libc.a, or RUSTC_WRAPPER set): the_sandbox_binary_has_no_dynamic_loader");
        return;
    }
    let elf = std::fs::read(env!("CARGO_BIN_EXE_sandbox")).unwrap();
    let types = program_header_types(&elf);
    assert!(!types.is_empty(), "no program headers");
    assert!(
        !types.contains(&PT_INTERP),
        "the sandbox binary asks for a dynamic loader (program header types {types:?})"
    );
}

/// The header reader itself: the system's shell is a dynamically linked program.
#[test]
fn a_dynamically_linked_program_shows_its_dynamic_loader() {
    let elf = std::fs::read("/bin/sh").unwrap();
    assert!(program_header_types(&elf).contains(&PT_INTERP));
}
