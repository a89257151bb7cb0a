//! The dispatch desk page and the resident report form in a real headless Chromium, with
//! screenshots (`desk*.png`, `report-form*.png` in the target dir): a dispatcher logs
//! in, opens a P1 from a call through the form, opens the ticket and transfers it; a
//! resident opens the form as the QR code would, files a report, and follows it by its
//! tracking code.
//!
//! Skips only when no Chromium is installed and `STEWARD_REQUIRE_BROWSER` is not set.

use anyhow::{bail, Context, Result};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use steward_tests::{step, HubSandbox, TEST_ESTATE};

const WAIT: Duration = Duration::from_secs(30);

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STEWARD_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn launch(path: PathBuf) -> Result<Browser> {
    let opts = LaunchOptions::default_builder()
        .path(Some(path))
        .headless(true)
        // Tests run as root in containers, where Chromium's sandbox cannot start.
        .sandbox(false)
        .window_size(Some((1440, 900)))
        .idle_browser_timeout(Duration::from_secs(300))
        .args(vec![OsStr::new("--disable-dev-shm-usage")])
        .build()?;
    Browser::new(opts).context("starting Chromium")
}

fn eval(tab: &Tab, js: &str) -> Result<Value> {
    Ok(tab.evaluate(js, false)?.value.unwrap_or(Value::Null))
}

fn text(tab: &Tab, selector: &str) -> Result<String> {
    let js = format!(
        "(document.querySelector({}) || {{}}).textContent || ''",
        json!(selector)
    );
    Ok(eval(tab, &js)?.as_str().unwrap_or_default().to_string())
}

/// Wait until the element's text contains every one of `needles`; returns the text.
fn wait_text(tab: &Tab, selector: &str, needles: &[&str]) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = text(tab, selector)?;
        if needles.iter().all(|n| t.contains(n)) {
            return Ok(t);
        }
        for err in [
            "[data-testid=page-error]",
            "[data-testid=call-error]",
            "[data-testid=desk-action-error]",
            "[data-testid=report-error]",
            "[data-testid=track-error]",
        ] {
            let e = text(tab, err)?;
            if !e.is_empty() {
                bail!("{selector}: the page shows an error: {e}");
            }
        }
        if Instant::now() >= deadline {
            bail!("{selector}: wanted {needles:?} within {WAIT:?}, text is {t:?}");
        }
        // Polling the page for the awaited text, bounded by the deadline above.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Set form fields by test id: `(testid, value)`.
fn fill(tab: &Tab, fields: &[(&str, &str)]) -> Result<()> {
    for (id, v) in fields {
        let sel = format!("[data-testid={id}]");
        tab.wait_for_element(&sel)?;
        let js = format!(
            "(() => {{ const e = document.querySelector({}); e.value = {}; e.dispatchEvent(new Event('change')); return e.value; }})()",
            json!(sel),
            json!(v)
        );
        if eval(tab, &js)? != json!(v) {
            bail!("{id}: could not set {v:?}");
        }
    }
    Ok(())
}

fn click(tab: &Tab, id: &str) -> Result<()> {
    let sel = format!("[data-testid={id}]");
    tab.wait_for_element(&sel)?;
    let js = format!(
        "(() => {{ const b = document.querySelector({}); if (!b) return false; b.click(); return true; }})()",
        json!(sel)
    );
    if eval(tab, &js)? != Value::Bool(true) {
        bail!("nothing to click at {sel}");
    }
    Ok(())
}

fn screenshot(tab: &Tab, sb: &HubSandbox, name: &str) -> Result<()> {
    let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)?;
    if png.len() < 1000 {
        bail!("screenshot {name}: only {} bytes", png.len());
    }
    std::fs::write(sb.dir.path().join(format!("{name}.png")), &png)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    if std::fs::create_dir_all(&target).is_ok() {
        let _ = std::fs::write(target.join(format!("{name}.png")), &png);
    }
    Ok(())
}

fn desk(tab: &Tab, sb: &HubSandbox, base: &str, token: &str) -> Result<i64> {
    tab.navigate_to(&format!("{base}/dashboard/"))?
        .wait_until_navigated()?;
    tab.wait_for_element("[data-testid=token-input]")?.click()?;
    tab.type_str(token)?;
    tab.wait_for_element("[data-testid=login]")?.click()?;
    wait_text(tab, "[data-testid=who]", &["dispatcher"])?;
    // The desk is a dispatcher's start page.
    wait_text(tab, "[data-testid=page-title]", &["Dispatcher desk"])?;
    fill(
        tab,
        &[
            ("desk-actor", "Zhao"),
            ("call-priority", "P1"),
            ("call-name", "Wang Li"),
            ("call-phone", "139 1234 5678"),
            ("call-compound", "cmp-1"),
            ("call-building", "b-1"),
            ("call-floor", "7"),
            ("call-category", "lift"),
            ("call-description", "someone trapped in the lift"),
        ],
    )?;
    screenshot(tab, sb, "desk-call")?;
    click(tab, "call-create")?;
    let done = wait_text(
        tab,
        "[data-testid=call-result]",
        &["#", "North repair station"],
    )?;
    let id: i64 = done
        .split('#')
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no ticket id in {done:?}"))?;
    eval(tab, &format!("location.hash = '#/desk/{id}'"))?;
    wait_text(
        tab,
        "[data-testid=desk-ticket]",
        &["Wang Li", "139 1234 5678", "P1"],
    )?;
    fill(
        tab,
        &[
            ("transfer-station", "st-acme"),
            ("transfer-reason", "Acme maintains this lift"),
        ],
    )?;
    click(tab, "transfer-go")?;
    wait_text(
        tab,
        "[data-testid=desk-ticket]",
        &["Acme PM station", "transfer"],
    )?;
    screenshot(tab, sb, "desk-ticket")?;
    Ok(id)
}

fn report_form(tab: &Tab, sb: &HubSandbox, base: &str) -> Result<String> {
    tab.navigate_to(&format!("{base}/report?compound=cmp-2"))?
        .wait_until_navigated()?;
    tab.wait_for_element("[data-testid=report-category] option")?;
    let compound = eval(
        tab,
        "document.querySelector('[data-testid=report-compound]').value",
    )?;
    if compound != json!("cmp-2") {
        bail!("the compound is not pre-selected: {compound}");
    }
    fill(
        tab,
        &[
            ("report-category", "gate"),
            ("report-description", "the gate does not close"),
            ("report-location", "north entrance"),
        ],
    )?;
    click(tab, "report-send")?;
    let done = wait_text(tab, "[data-testid=report-done]", &["tracking code"])?;
    let code = done
        .split_whitespace()
        .find(|w| w.trim_end_matches(':').len() == 10)
        .map(|w| w.trim_end_matches(':').to_string())
        .with_context(|| format!("no code in {done:?}"))?;
    click(tab, "track-go")?;
    wait_text(
        tab,
        "[data-testid=track-result]",
        &["Received", "Oak Court", "Gate"],
    )?;
    screenshot(tab, sb, "report-form")?;
    Ok(code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_page_and_the_report_form_in_a_browser() -> Result<()> {
    let Some(chromium) = find_chromium() else {
        if std::env::var_os("STEWARD_REQUIRE_BROWSER").is_some() {
            bail!("STEWARD_REQUIRE_BROWSER is set but no Chromium was found");
        }
        eprintln!("SKIPPED desk page browser test: no Chromium found");
        return Ok(());
    };
    let sb = HubSandbox::start_with(TEST_ESTATE, |_| {}).await?;
    let r = sb
        .http()
        .post(sb.api("/api/v1/tokens"))
        .bearer_auth(&sb.hub.admin_token)
        .json(&json!({"name": "hotline 1", "role": "dispatcher"}))
        .send()
        .await?;
    if r.status() != StatusCode::CREATED {
        bail!("dispatcher token: HTTP {}", r.status());
    }
    let token = r.json::<Value>().await?["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let browser = tokio::task::block_in_place(|| launch(chromium))?;
    let tab = tokio::task::block_in_place(|| -> Result<_> {
        let tab = browser.new_tab()?;
        tab.set_default_timeout(WAIT);
        Ok(tab)
    })?;
    let base = sb.api("");
    let id = step("a dispatcher opens and transfers a P1", async {
        tokio::task::block_in_place(|| desk(&tab, &sb, &base, &token))
    })
    .await?;
    let t: Value = sb
        .http()
        .get(sb.api(&format!("/api/v1/tickets/{id}")))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(t["ticket"]["priority"], json!("P1"));
    assert_eq!(t["ticket"]["station"], json!("st-acme"));
    assert_eq!(t["audit"][0]["actor"], json!("Zhao [hotline 1]"));
    let code = step("a resident files and follows a report", async {
        tokio::task::block_in_place(|| report_form(&tab, &sb, &base))
    })
    .await?;
    let r = sb
        .http()
        .get(sb.api(&format!("/api/v1/public/reports/{code}")))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    drop(tab);
    drop(browser);
    sb.shutdown().await;
    Ok(())
}
