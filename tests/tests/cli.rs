//! The offline subcommands of the `steward` binary as a user runs them: what they print
//! and how they exit. No hub, no QuestDB.

use anyhow::Result;
use std::path::Path;
use std::process::{Command, Output};
use steward_tests::process::steward_bin;

fn steward(dir: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(steward_bin()?)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_os_error_is_said_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("steward.toml"),
        "[estate]\nfile = \"no-such-estate.toml\"\n",
    )?;
    for args in [
        &["check-config", "--config", "steward.toml"][..],
        &["rules", "check", "--rule", "no-such-rules.toml"][..],
        &["rules", "check", "--rule", "no-such-dir/"][..],
    ] {
        let out = steward(dir.path(), args)?;
        assert!(!out.status.success(), "{args:?} must fail");
        let err = text(&out.stderr);
        assert_eq!(err.matches("os error 2").count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches("No such file").count(), 1, "{args:?}: {err}");
    }
    Ok(())
}

#[test]
fn demo_help_lists_every_fault() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = steward(dir.path(), &["demo", "--help"])?;
    assert!(out.status.success());
    let help = text(&out.stdout);
    for fault in steward_device_sim::Fault::ALL {
        assert!(help.contains(fault.name()), "{fault} missing from:\n{help}");
    }
    Ok(())
}

#[test]
fn logs_have_no_colour_codes_when_redirected() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("estate.toml"),
        steward_tests::TEST_ESTATE.as_ref() as &str,
    )?;
    std::fs::write(
        dir.path().join("steward.toml"),
        "[estate]\nfile = \"estate.toml\"\ndatabase = \"steward.db\"\n",
    )?;
    let out = Command::new(steward_bin()?)
        .args(["token", "list", "--config", "steward.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()?;
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("estate loaded"),
        "a log line is written: {err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no ANSI escape in redirected logs: {err:?}"
    );
    Ok(())
}

/// The contents of the first fenced block of `lang` after `after` in `text`.
fn block<'a>(text: &'a str, after: &str, lang: &str) -> &'a str {
    let from = text.find(after).map_or(text, |i| &text[i..]);
    let fence = format!("```{lang}\n");
    let start = from.find(&fence).expect("fenced block") + fence.len();
    let len = from[start..].find("```").expect("closing fence");
    &from[start..start + len]
}

/// A payload with five faults gets five errors in one run, each with its JSON path, the
/// timestamp window in days, a hint that the `ts` is in seconds, and the nearest metric
/// name: the example of docs/device-contract.md section 14, whose printed output must be
/// what the command prints.
#[test]
fn check_payload_lists_every_error_of_a_payload() -> Result<()> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/device-contract.md"
    ))?;
    let section = "## 14. Checking a payload offline";
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("reading.json"),
        block(&doc, section, "json"),
    )?;
    let shown = block(&doc, section, "text");
    let (command, expected) = shown.split_once('\n').expect("a command and its output");
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args[..2], ["$", "steward"], "{command}");
    let out = steward(dir.path(), &args[2..])?;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout, expected, "the doc shows what the command prints");
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("rejected "))
        .collect();
    assert_eq!(errors.len(), 5, "{stdout}");
    for (path, words) in [
        ("$.colour", "unexpected field"),
        ("$.ts", "days old"),
        ("$.ts", "from 30 days before"),
        ("$.ts", "looks like seconds"),
        (
            "$.metrics.obscuration_pct_m",
            "did you mean `obscuration_pct_per_m`?",
        ),
        ("$.metrics.alarm", "wrong_type"),
        ("$.metrics.co_ppm", "out_of_range"),
    ] {
        let prefix = format!("rejected {path}: ");
        assert!(
            errors
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(words)),
            "{path}: {words}\n{stdout}"
        );
    }
    assert!(stdout.contains("5 errors"), "{stdout}");

    // A good reading, judged at a given time: `seq=991`, not `seq=Some(991)`.
    std::fs::write(
        dir.path().join("good.json"),
        r#"{"ts": 1772439300000, "seq": 991, "metrics": {"floor": 3}}"#,
    )?;
    let out = steward(
        dir.path(),
        &[
            "check-payload",
            "--kind",
            "lift",
            "--topic",
            "devices/lift-1/telemetry",
            "--now",
            "2026-03-02T08:20:00Z",
            "good.json",
        ],
    )?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(" seq=991 "), "{stdout}");
    Ok(())
}

/// `generate-config` prints a file `check-config` accepts, every key with a comment.
#[test]
fn generated_config_checks() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = steward(dir.path(), &["generate-config", "--output", "steward.toml"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = std::fs::read_to_string(dir.path().join("steward.toml"))?;
    for key in [
        "tls_listen",
        "tls_cert",
        "tls_key",
        "http_addr",
        "http_port",
        "pg_port",
        "devices_csv",
    ] {
        assert!(config.contains(key), "{key} missing:\n{config}");
    }
    // The estate file it names, next to it.
    std::fs::write(
        dir.path().join("estate.toml"),
        steward_tests::TEST_ESTATE.as_ref() as &str,
    )?;
    let out = steward(dir.path(), &["check-config", "--config", "steward.toml"])?;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("steward.toml: ok"));
    Ok(())
}
