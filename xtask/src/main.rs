//! `cargo xtask`: see `cargo xtask --help`, README.md and ARCHITECTURE.md.

fn main() -> std::process::ExitCode {
    xtask::main()
}
