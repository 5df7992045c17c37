//! The README's `sh` blocks, pasted in order into one shell, against the
//! server the README itself starts: if a step fails (an HTTP error, or a
//! filter that finds nothing), the README is wrong. `shell` blocks
//! (installs, the test command itself) are not run.

use std::process::Command;

/// The text of every ```sh block, in order.
fn sh_blocks(readme: &str) -> Vec<&str> {
    readme
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap_or_default())
        .collect()
}

/// `curl` as the README uses it, but failing on an HTTP error, on no
/// answer at all, and on a `$filter` that finds nothing.
const PRELUDE: &str = r#"set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
curl() {
  local out rc=0
  out=$(command curl -sS -w '\n%{http_code}' "$@") || rc=$?
  local status=${out##*$'\n'} body=${out%$'\n'*}
  printf '%s\n' "$body"
  if [ "$rc" -ne 0 ]; then return "$rc"; fi
  if [ "$status" = 000 ]; then return 7; fi
  if [ "$status" -ge 400 ]; then echo "README: HTTP $status from curl $*" >&2; return 1; fi
  case "$*" in *filter*)
    if printf '%s' "$body" | grep -q '"value":\[\]'; then echo "README: nothing found by curl $*" >&2; return 1; fi;;
  esac
}
"#;

#[test]
fn the_readme_shell_blocks_run_in_order_against_the_server_it_starts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    assert!(blocks.len() >= 4, "the README has its runnable blocks");
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let bin = env!("CARGO_BIN_EXE_agentry");
    let script = format!("{PRELUDE}\n{}\n", blocks.join("\n"))
        .replace("cargo run --release -q --", bin)
        .replace("cargo run --release --", bin)
        .replace("127.0.0.1:7171", &addr);
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("examples"), dir.path().join("examples")).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("AGENTRY_LISTEN", &addr)
        .env_remove("AGENTRY_DATABASE_URL")
        .env_remove("AGENTRY_DATA_DIR")
        .env_remove("AGENTRY_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's shell blocks failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Teams Meeting Scheduler Agent"), "{stdout}");
}
