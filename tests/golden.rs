//! `stancewatch process` output on the examples and the seed article, byte for byte against golden copies, so
//! that a change meant to keep behaviour (a refactoring, a speed-up) is seen to keep it, and a change meant to
//! alter it shows exactly what it altered. `STANCEWATCH_BLESS=1 cargo test --test golden` rewrites the copies
//! after an intended change; review the diff before committing it.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stancewatch");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check(input: &str, golden: &str) {
    let input = Path::new(ROOT).join(input);
    if !input.exists() {
        eprintln!("skipping: {} is absent", input.display());
        return;
    }
    let out = Command::new(BIN)
        .arg("process")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let golden = Path::new(ROOT).join(golden);
    if std::env::var_os("STANCEWATCH_BLESS").is_some() {
        std::fs::write(&golden, &out.stdout).unwrap();
        return;
    }
    let expected = std::fs::read(&golden).unwrap();
    if out.stdout != expected {
        let got = String::from_utf8_lossy(&out.stdout);
        let want = String::from_utf8_lossy(&expected);
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "`stancewatch process {}` differs from {} from line {} on (STANCEWATCH_BLESS=1 to accept an intended change)",
            input.display(),
            golden.display(),
            line + 1
        );
    }
}

#[test]
fn examples_match_their_golden_copy() {
    check(
        "examples/articles.jsonl",
        "tests/golden/examples.enriched.jsonl",
    );
}

#[test]
fn the_seed_article_matches_its_golden_copy() {
    check(
        "../shared/samples/karabakh-opinion.json",
        "tests/golden/karabakh-opinion.enriched.jsonl",
    );
}
