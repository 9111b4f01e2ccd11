//! The README's first quick-start command, end to end (needs root): `cargo xtask demo` is handed
//! to the sandbox tool, `xtask-dev`, which this test runs directly (the product binary only
//! forwards; xtask/tests/it/cli.rs checks the forwarding).

use std::process::{Command, Stdio};

#[test]
fn the_demo_runs_end_to_end() {
    // It starts its own sandbox.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask-dev"))
        .arg("demo")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("xtask-dev runs");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "--- stdout\n{text}--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text.contains(
            "demo complete: deploy succeeded, the second deploy changed nothing, an impostor was refused, drift was caught"
        ),
        "{text}"
    );
    assert!(
        text.contains("refused: in 15 s the impostor never joined"),
        "{text}"
    );
    assert!(
        text.contains("! cluster-changed Service/zookeeper/zk0"),
        "{text}"
    );
    assert!(text.contains("! host-files host/zk-observer-2"), "{text}");
    assert!(
        text.contains("write requests the API server received from the drift identity: 0"),
        "{text}"
    );
}
