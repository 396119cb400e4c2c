//! Runs a scenario's other half in a child process: this same test binary,
//! running one of its `#[ignore]`d tests, which reads its directory from
//! [`CHILD_DIR_ENV`] and reports progress on stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

pub const CHILD_DIR_ENV: &str = "EDDY_STORE_TEST_CHILD_DIR";

pub struct ChildProcess {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
}

/// Starts the ignored test `test` of this binary in a child process. Its
/// stdin is a pipe the child can block on: it closes when the parent exits,
/// so a child outlives a failed parent by no more than a read.
pub fn spawn(test: &str, dir: &Path) -> ChildProcess {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    ChildProcess { child, stdout }
}

impl ChildProcess {
    /// Reads the child's stdout up to a line ending in `line` (libtest may
    /// have printed `test <name> ... ` on the same line before it).
    pub fn wait_for(&mut self, line: &str) {
        let mut read = String::new();
        loop {
            read.clear();
            let n = self.stdout.read_line(&mut read).unwrap();
            assert!(
                n > 0,
                "child exited before printing {line:?}: {:?}",
                self.child.wait()
            );
            if read.trim_end().ends_with(line) {
                return;
            }
        }
    }

    /// SIGKILL: no destructors, no flush, as a crash or an OOM kill.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "{status}");
    }
}

/// In the child: the directory the parent passed, or `None` when the
/// ignored test is run by hand.
pub fn child_dir() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD_DIR_ENV).map(Into::into)
}

/// In the child: prints a progress line the parent waits for.
pub fn report(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// In the child: blocks until the parent kills it or exits.
pub fn hold() {
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
}
