//! `cargo xtask`: see `cargo xtask --help`, README.md, docs/ and ARCHITECTURE.md.

fn main() -> std::process::ExitCode {
    xtask::main()
}
