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
