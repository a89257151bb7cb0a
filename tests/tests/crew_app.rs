//! The crew app (`/crew/`) on a phone-sized headless Chromium (390x844, driven over the
//! DevTools protocol), as a crew member uses it, with a screenshot of each step: log in,
//! see a live P1 appear, acknowledge, dispatch to a named colleague, go on site, attach a
//! real JPEG, resolve with a note and a failure code; then with the network switched off
//! two moves are queued on the phone and, once it is back, applied in order. And over the
//! API side (photo refusals, the resolve and cancel rules): crew_photos.rs.
//!
//! Skips only when no Chromium is installed and `STEWARD_REQUIRE_BROWSER` is not set.

mod support;

use anyhow::{bail, ensure, Context, Result};
use headless_chrome::protocol::cdp::Emulation;
use headless_chrome::protocol::cdp::Network;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use steward_tests::{step, HubSandbox, TEST_ESTATE};
use support::crew::{api, audit_states, crew_token, hub_state, jpeg, move_to, ticket_of, WAIT};

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
        .sandbox(false)
        .window_size(Some((390, 844)))
        .idle_browser_timeout(Duration::from_secs(300))
        .args(vec![OsStr::new("--disable-dev-shm-usage")])
        .build()?;
    Browser::new(opts).context("starting Chromium")
}

/// Run a blocking browser call without stalling the hub's tasks on this worker.
fn b<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    tokio::task::block_in_place(f)
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

/// Wait until the expression `js` is true in the page.
fn wait_js(tab: &Tab, js: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while eval(tab, js)? != Value::Bool(true) {
        if Instant::now() >= deadline {
            bail!("`{js}` not true within {WAIT:?}");
        }
        // Polling the page for the awaited state, bounded by the deadline above.
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn wait_text(tab: &Tab, selector: &str, needles: &[&str]) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = text(tab, selector)?;
        if needles.iter().all(|n| t.contains(n)) {
            return Ok(t);
        }
        if Instant::now() >= deadline {
            bail!("{selector}: wanted {needles:?} within {WAIT:?}, text is {t:?}");
        }
        // Polling the page for the awaited text, bounded by the deadline above.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Click in one step: pages redraw on ticket events.
fn click(tab: &Tab, selector: &str) -> Result<()> {
    tab.wait_for_element(selector)?;
    let clicked = eval(
        tab,
        &format!(
            "(() => {{ const b = document.querySelector({}); if (!b) return false; b.click(); return true; }})()",
            json!(selector)
        ),
    )?;
    ensure!(
        clicked == Value::Bool(true),
        "nothing to click at {selector}"
    );
    Ok(())
}

/// Set a form field's value as typing would (an `input` event).
fn fill(tab: &Tab, selector: &str, value: &str) -> Result<()> {
    tab.wait_for_element(selector)?;
    let js = format!(
        "(() => {{ const e = document.querySelector({}); e.value = {}; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); return e.value; }})()",
        json!(selector),
        json!(value)
    );
    ensure!(
        eval(tab, &js)? == json!(value),
        "{selector}: no such value {value}"
    );
    Ok(())
}

fn no_error(tab: &Tab, page: &str) -> Result<()> {
    for sel in [
        "[data-testid=page-error]",
        "[data-testid=action-error]",
        "[data-testid=photo-error]",
    ] {
        let err = text(tab, sel)?;
        ensure!(err.is_empty(), "{page}: {err}");
    }
    Ok(())
}

/// The phone layout holds: no sideways scroll, and every button at least 44 px tall.
fn phone_layout(tab: &Tab, page: &str) -> Result<()> {
    let overflow = eval(
        tab,
        "document.documentElement.scrollWidth - window.innerWidth",
    )?;
    ensure!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "{page}: scrolls sideways by {overflow} px"
    );
    let cut = eval(
        tab,
        "JSON.stringify([...document.querySelectorAll('header *, main *')].filter((e) => { const r = e.getBoundingClientRect(); return e.offsetParent && r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1); }).map((e) => (e.dataset.testid || e.tagName) + ':' + Math.round(e.getBoundingClientRect().right)))",
    )?;
    ensure!(cut == json!("[]"), "{page}: cut off at the right: {cut}");
    let small = eval(
        tab,
        "JSON.stringify([...document.querySelectorAll('button, label.button, select, input:not([type=file])')].filter((b) => b.offsetParent && b.getBoundingClientRect().height < 44).map((b) => (b.dataset.testid || b.textContent) + ':' + b.getBoundingClientRect().height))",
    )?;
    ensure!(
        small == json!("[]"),
        "{page}: controls under 44 px: {small}"
    );
    Ok(())
}

fn screenshot(tab: &Tab, sb: &HubSandbox, name: &str) -> Result<()> {
    let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)?;
    ensure!(
        png.len() >= 1000,
        "screenshot {name}: only {} bytes",
        png.len()
    );
    std::fs::write(sb.dir.path().join(format!("{name}.png")), &png)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    if std::fs::create_dir_all(&target).is_ok() {
        let _ = std::fs::write(target.join(format!("{name}.png")), &png);
    }
    Ok(())
}

fn phone(tab: &Tab) -> Result<()> {
    tab.call_method(Emulation::SetDeviceMetricsOverride {
        width: 390,
        height: 844,
        device_scale_factor: 2.0,
        mobile: true,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })?;
    Ok(())
}

fn network(tab: &Tab, offline: bool) -> Result<()> {
    tab.call_method(Network::EmulateNetworkConditions {
        offline,
        latency: 0.0,
        download_throughput: -1.0,
        upload_throughput: -1.0,
        connection_Type: None,
        packet_loss: None,
        packet_queue_length: None,
        packet_reordering: None,
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crew_app_on_a_phone_online_and_offline() -> Result<()> {
    let Some(chromium) = find_chromium() else {
        if std::env::var_os("STEWARD_REQUIRE_BROWSER").is_some() {
            bail!("STEWARD_REQUIRE_BROWSER is set but no Chromium was found");
        }
        eprintln!("SKIPPED crew app browser test: no Chromium found (apt-get install chromium, or set STEWARD_CHROMIUM)");
        return Ok(());
    };
    // The north station's roster: the crew member dispatched is picked from it.
    let estate = format!(
        "{}\n[[people]]\nid = \"p-wang\"\nname = \"Wang Wei\"\n\
         [[people]]\nid = \"p-zhou\"\nname = \"Zhou Min\"\n\
         [[crews]]\nid = \"crew-north-a\"\nname = \"North crew A\"\nstation = \"st-north\"\n\
         members = [\"p-wang\", \"p-zhou\"]\n",
        TEST_ESTATE.as_ref()
    );
    let sb = HubSandbox::start_with(estate, |c| {
        c.rules.sla.p1_ack = Duration::from_secs(3600);
        c.rules.sla.p1_on_site = Some(Duration::from_secs(7200));
    })
    .await?;
    let token = crew_token(&sb).await?;
    // A fire alarm before anyone looks: the ticket worked on offline later.
    support::smoke_alarm(&sb).await?;
    let smoke = ticket_of(&sb, "smoke-1", "smoke-fire-alarm").await?;
    let browser = b(|| launch(chromium))?;
    let tab = b(|| {
        let tab = browser.new_tab()?;
        tab.set_default_timeout(WAIT);
        phone(&tab)?;
        Ok(tab)
    })?;
    let base = sb.api("");
    let photo = sb.dir.path().join("door-operator.jpg");
    std::fs::write(&photo, jpeg(1200, 900)?)?;

    step("log in on the phone", async {
        b(|| {
            tab.navigate_to(&format!("{base}/crew/"))?
                .wait_until_navigated()?;
            tab.wait_for_element("[data-testid=token-input]")?;
            fill(&tab, "[data-testid=token-input]", &token)?;
            fill(&tab, "[data-testid=actor-input]", "Li Ming")?;
            screenshot(&tab, &sb, "crew-1-login")?;
            phone_layout(&tab, "login")?;
            click(&tab, "[data-testid=login]")?;
            tab.wait_for_element(&format!("[data-testid=ticket-{smoke}]"))?;
            wait_text(&tab, "[data-testid=list-title]", &["North repair station"])?;
            eval(&tab, "window.__crewPageMark = 'same-page'")?;
            // Installable: the manifest is linked and the service worker took the app.
            wait_js(
                &tab,
                "!!document.querySelector('link[rel=manifest]') && navigator.serviceWorker.controller !== undefined",
            )?;
            Ok(())
        })
    })
    .await?;
    let sw = b(|| {
        Ok(tab
            .evaluate(
                "navigator.serviceWorker.ready.then((r) => !!r.active)",
                true,
            )?
            .value)
    })?;
    ensure!(sw == Some(json!(true)), "service worker not active: {sw:?}");

    let lift = step("a live P1 appears", async {
        support::trap_passenger(&sb).await?;
        let id = ticket_of(&sb, "lift-1", "lift-trapped").await?;
        b(|| {
            let card = format!("[data-testid=ticket-{id}]");
            tab.wait_for_element(&card).context("the P1 on the list")?;
            ensure!(
                eval(&tab, "window.__crewPageMark")? == json!("same-page"),
                "the ticket appeared only after a reload"
            );
            wait_text(&tab, &card, &["P1", "Elm Court", "Block 1"])?;
            wait_text(&tab, &format!("[data-testid=sla-{id}]"), &[":"])?;
            phone_layout(&tab, "list")?;
            no_error(&tab, "list")?;
            screenshot(&tab, &sb, "crew-2-list-live-p1")
        })?;
        Ok(id)
    })
    .await?;

    step("acknowledge, dispatch, on site", async {
        b(|| {
            click(&tab, &format!("[data-testid=ticket-{lift}]"))?;
            wait_text(&tab, "[data-testid=ticket-title]", &[&format!("#{lift}")])?;
            tab.wait_for_element("[data-testid=ticket-sla]")?;
            tab.wait_for_element("[data-testid=act-acknowledged]")?;
            ensure!(
                eval(&tab, "!!document.querySelector('[data-testid=act-closed]')")? == json!(false),
                "an illegal move is offered"
            );
            phone_layout(&tab, "ticket")?;
            screenshot(&tab, &sb, "crew-3-ticket")?;
            // The rest of the page: live condition, history chart, audit trail.
            tab.wait_for_element("[data-testid=chart] svg, [data-testid=chart-empty]")?;
            eval(&tab, "window.scrollTo(0, document.body.scrollHeight)")?;
            screenshot(&tab, &sb, "crew-3b-ticket-bottom")?;
            eval(&tab, "window.scrollTo(0, 0)")?;
            click(&tab, "[data-testid=act-acknowledged]")
        })?;
        hub_state(&sb, lift, "acknowledged").await?;
        b(|| {
            click(&tab, "[data-testid=act-dispatched]")?;
            tab.wait_for_element("[data-testid=dispatch-who]")?;
            // A colleague picked from the station's roster.
            let names = eval(
                &tab,
                "(() => { const w = document.querySelector('[data-testid=dispatch-who]'); return w.tagName === 'SELECT' ? [...w.options].map((o) => o.value).filter(Boolean).join(',') : 'free text'; })()",
            )?;
            ensure!(
                names.as_str().is_some_and(|n| n.contains("Wang Wei") && n.contains("Zhou Min")),
                "the dispatch form does not offer the roster: {names}"
            );
            fill(&tab, "[data-testid=dispatch-who]", "Zhou Min")?;
            phone_layout(&tab, "dispatch form")?;
            screenshot(&tab, &sb, "crew-4-dispatch")?;
            click(&tab, "[data-testid=dispatch-submit]")?;
            Ok(())
        })?;
        let d = hub_state(&sb, lift, "dispatched").await?;
        ensure!(d["assignee"] == "Zhou Min", "assignee: {}", d["assignee"]);
        b(|| {
            wait_text(&tab, "[data-testid=assignee]", &[d["assignee"].as_str().unwrap_or("-")])?;
            click(&tab, "[data-testid=act-on_site]")
        })?;
        hub_state(&sb, lift, "on_site").await?;
        Ok(())
    })
    .await?;

    step("attach a real JPEG", async {
        b(|| {
            tab.wait_for_element("[data-testid=act-resolved]")?;
            let path = photo.to_str().context("photo path")?;
            tab.wait_for_element("[data-testid=photo-input]")?
                .set_input_files(&[path])?;
            wait_text(&tab, "[data-testid=photo-ok]", &["attached"])?;
            wait_js(
                &tab,
                "[...document.querySelectorAll('[data-testid=photos] img')].some((i) => i.complete && i.naturalWidth > 0)",
            )?;
            no_error(&tab, "photo")?;
            screenshot(&tab, &sb, "crew-5-photo")
        })?;
        let photos = api(&sb, &format!("/api/v1/tickets/{lift}/photos")).await?;
        ensure!(photos["photos"].as_array().map(Vec::len) == Some(1), "{photos}");
        let d = api(&sb, &format!("/api/v1/tickets/{lift}")).await?;
        let sha = photos["photos"][0]["sha256"].as_str().unwrap_or_default();
        ensure!(
            d["audit"].as_array().is_some_and(|a| a
                .iter()
                .any(|r| r["action"] == "photo" && r["note"].as_str().is_some_and(|n| n.contains(sha)))),
            "the photo's SHA-256 is not in the audit trail"
        );
        Ok(())
    })
    .await?;

    step("resolve with a note and a failure code", async {
        b(|| {
            click(&tab, "[data-testid=act-resolved]")?;
            // Sending without a failure code is stopped on the phone.
            fill(
                &tab,
                "[data-testid=resolve-note]",
                "replaced the door operator belt",
            )?;
            click(&tab, "[data-testid=resolve-submit]")?;
            wait_text(&tab, "[data-testid=action-error]", &["failure code"])?;
            fill(&tab, "[data-testid=resolve-code]", "door_operator")?;
            phone_layout(&tab, "resolve form")?;
            screenshot(&tab, &sb, "crew-6-resolve")?;
            click(&tab, "[data-testid=resolve-submit]")
        })?;
        let d = hub_state(&sb, lift, "resolved").await?;
        ensure!(
            d["failure_code"] == "door_operator",
            "{}",
            d["failure_code"]
        );
        b(|| {
            wait_text(&tab, "[data-testid=failure-code]", &["door_operator"])?;
            tab.wait_for_element("[data-testid=act-closed]")?;
            screenshot(&tab, &sb, "crew-7-resolved")
        })?;
        Ok(())
    })
    .await?;

    step(
        "offline: two moves queued, applied in order when back",
        async {
            b(|| {
                eval(&tab, "location.hash = '#/'")?;
                // The resolved ticket stays listed until closed.
                wait_text(&tab, &format!("[data-testid=state-{lift}]"), &["resolved"])?;
                click(&tab, &format!("[data-testid=ticket-{smoke}]"))?;
                tab.wait_for_element("[data-testid=act-acknowledged]")?;
                wait_text(&tab, "[data-testid=ticket-title]", &[&format!("#{smoke}")])?;
                tab.call_method(Network::Enable {
                    max_total_buffer_size: None,
                    max_resource_buffer_size: None,
                    max_post_data_size: None,
                    report_direct_socket_traffic: None,
                    enable_durable_messages: None,
                })?;
                network(&tab, true)?;
                wait_text(&tab, "[data-testid=net]", &["offline"])?;
                click(&tab, "[data-testid=act-acknowledged]")?;
                wait_text(&tab, "[data-testid=pending-count]", &["1"])?;
                wait_text(&tab, "[data-testid=ticket-state]", &["acknowledged"])?;
                click(&tab, "[data-testid=act-on_hold]")?;
                fill(
                    &tab,
                    "[data-testid=hold-reason]",
                    "no access to flat 1201 until 18:00",
                )?;
                click(&tab, "[data-testid=hold-submit]")?;
                wait_text(&tab, "[data-testid=pending-count]", &["2"])?;
                wait_text(&tab, "[data-testid=queue]", &["queued"])?;
                phone_layout(&tab, "offline")?;
                screenshot(&tab, &sb, "crew-8-offline-queued")
            })?;
            // Nothing reached the hub while the phone was offline.
            let d = api(&sb, &format!("/api/v1/tickets/{smoke}")).await?;
            ensure!(d["ticket"]["state"] == "open", "{}", d["ticket"]["state"]);
            b(|| network(&tab, false))?;
            let d = hub_state(&sb, smoke, "on_hold").await?;
            ensure!(
                audit_states(&d) == ["open", "acknowledged", "on_hold"],
                "moves applied out of order: {:?}",
                audit_states(&d)
            );
            let hold = d["audit"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["to_state"] == "on_hold"))
                .cloned()
                .unwrap_or_default();
            ensure!(
                hold["note"] == "no access to flat 1201 until 18:00"
                    && hold["actor"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("Li Ming")),
                "hold audit: {hold}"
            );
            b(|| {
                wait_js(
                    &tab,
                    "document.querySelector('[data-testid=pending-count]').hidden",
                )?;
                wait_text(&tab, "[data-testid=ticket-state]", &["on hold"])?;
                no_error(&tab, "back online")?;
                screenshot(&tab, &sb, "crew-9-back-online")
            })?;
            Ok(())
        },
    )
    .await?;

    step(
        "offline: a move against a ticket someone else moved shows its conflict",
        async {
            b(|| {
                network(&tab, true)?;
                wait_text(&tab, "[data-testid=net]", &["offline"])?;
                click(&tab, "[data-testid=act-on_site]")?;
                wait_text(&tab, "[data-testid=pending-count]", &["1"])
            })?;
            let (s, body) = move_to(
            &sb,
            smoke,
            json!({"to": "cancelled", "actor": "dispatcher", "note": "false alarm: cooking smoke"}),
        )
        .await?;
            ensure!(s == StatusCode::OK, "cancel: {s} {body}");
            b(|| {
                network(&tab, false)?;
                wait_text(
                    &tab,
                    "[data-testid=queue]",
                    &["moved meanwhile", "cancelled"],
                )?;
                wait_text(&tab, "[data-testid=ticket-state]", &["cancelled"])?;
                phone_layout(&tab, "conflict")?;
                screenshot(&tab, &sb, "crew-10-conflict")?;
                click(&tab, "[data-testid=dismiss-on_site]")?;
                wait_js(
                    &tab,
                    "document.querySelector('[data-testid=pending-count]').hidden",
                )
            })?;
            let d = api(&sb, &format!("/api/v1/tickets/{smoke}")).await?;
            ensure!(
                audit_states(&d) == ["open", "acknowledged", "on_hold", "cancelled"],
                "{:?}",
                audit_states(&d)
            );
            Ok(())
        },
    )
    .await?;

    step("close the resolved ticket", async {
        b(|| {
            eval(&tab, &format!("location.hash = '#/ticket/{lift}'"))?;
            wait_text(&tab, "[data-testid=ticket-title]", &[&format!("#{lift}")])?;
            click(&tab, "[data-testid=act-closed]")
        })?;
        let d = hub_state(&sb, lift, "closed").await?;
        ensure!(
            audit_states(&d) == ["open", "acknowledged", "dispatched", "on_site", "resolved", "closed"],
            "{:?}",
            audit_states(&d)
        );
        let notes: Vec<&str> = d["audit"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["note"].as_str()).collect())
            .unwrap_or_default();
        ensure!(
            notes.contains(&"failure code door_operator: replaced the door operator belt"),
            "{notes:?}"
        );
        ensure!(!notes.iter().any(|n| n.contains("crew board")), "{notes:?}");
        b(|| {
            eval(&tab, "location.hash = '#/'")?;
            wait_js(
                &tab,
                &format!("!document.querySelector('[data-testid=ticket-{lift}]') && !!document.querySelector('[data-testid=ticket-list], [data-testid=no-tickets]')"),
            )?;
            screenshot(&tab, &sb, "crew-11-list-after")?;
            // 中文 from the same catalogue.
            fill(&tab, "[data-testid=lang]", "zh-CN")?;
            wait_text(&tab, "[data-testid=list-title]", &["\u{5de5}\u{5355}"])?;
            phone_layout(&tab, "zh-CN list")?;
            screenshot(&tab, &sb, "crew-12-zh-cn")
        })?;
        Ok(())
    })
    .await?;

    drop(tab);
    drop(browser);
    sb.shutdown().await;
    Ok(())
}
