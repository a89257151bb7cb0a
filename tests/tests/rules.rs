//! Rules end to end: a simulated trapped passenger published over MQTT becomes a P1
//! ticket for the compound's station, its alert reaches the station's MQTT topic, its
//! events land in QuestDB, and the ticket survives a restart.

use std::time::Duration;
use steward_device_sim::{DeviceModel, Fault};
use steward_estate::DeviceKind;
use steward_tests::{now_ms, wait_until, HubSandbox, TestClient};
use steward_tickets::{Priority, TicketFilter, TicketState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapped_passenger_over_mqtt_raises_a_p1_ticket_for_the_right_station() -> anyhow::Result<()>
{
    let sb = HubSandbox::start().await?;
    // A crew client of the north station listens to its station's alerts, logged in with
    // a crew token.
    let token = sb.hub.registry.create_token(&steward_estate::NewToken {
        name: "crew-north".into(),
        role: steward_estate::Role::Crew,
        scope: steward_estate::TokenScope {
            station: Some("st-north".into()),
            ..Default::default()
        },
    })?;
    let crew =
        TestClient::connect(&sb.mqtt_addr(), "crew-north", "crew-north", &token.token).await?;
    crew.subscribe("stations/st-north/alerts").await?;

    let lift = sb.device("lift-1", "lift-1-secret").await?;
    let mut model = DeviceModel::new("lift-1", DeviceKind::Lift, 11);
    let start = now_ms() - 5 * 60_000;
    let mut published = 0;
    // A minute of normal service, then the car stops between floors with a passenger.
    for step in 0..30 {
        let ts = start + step * 5_000;
        if step == 12 {
            model.set_fault(Some(Fault::LiftTrapped));
        }
        for m in model.tick(ts) {
            lift.publish(&m.topic, m.payload).await?;
            published += 1;
        }
    }
    lift.wait_acks(published).await?;

    let filter = TicketFilter {
        device_id: Some("lift-1".into()),
        ..TicketFilter::default()
    };
    let tickets = sb.hub.tickets.clone();
    let raised = wait_until(Duration::from_secs(20), || {
        let t = tickets.list(&filter).unwrap_or_default();
        async move { t.iter().any(|t| t.rule_id == "lift-trapped") }
    })
    .await;
    assert!(
        raised,
        "no lift-trapped ticket; tickets: {:?}",
        sb.hub.tickets.list(&filter)
    );
    let all = sb.hub.tickets.list(&filter)?;
    assert_eq!(
        all.len(),
        1,
        "one ticket per (device, rule), repeats counted: {all:?}"
    );
    let t = &all[0];
    assert_eq!(t.priority, Priority::P1);
    assert_eq!(
        t.station, "st-north",
        "cmp-1 has no property company: street fall-back"
    );
    assert_eq!(t.compound, "cmp-1");
    assert_eq!(t.state, TicketState::Open);

    // The station's crews got the alert over MQTT.
    let received = crew.received.clone();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let got = received.lock().iter().any(|(topic, body)| {
                topic == "stations/st-north/alerts"
                    && String::from_utf8_lossy(body).contains("lift-trapped")
            });
            async move { got }
        })
        .await,
        "no alert on stations/st-north/alerts"
    );
    // Ticket events are in QuestDB for managers' charts.
    sb.wait_count(
        "SELECT count() FROM ticket_events WHERE rule_id = 'lift-trapped' AND kind = 'raised'",
        1,
        Duration::from_secs(20),
    )
    .await?;

    // Backtest over the same history in QuestDB finds the same ticket.
    sb.wait_count(
        "SELECT count() FROM lift_telemetry WHERE device_id = 'lift-1'",
        30,
        Duration::from_secs(20),
    )
    .await?;
    let would = steward_rules::backtest(
        &sb.hub.questdb,
        &steward_rules::RulePack::default_pack(),
        &sb.hub.registry.directory(),
        start - 1_000,
        now_ms(),
    )
    .await?;
    assert!(
        would
            .iter()
            .any(|b| b.rule_id == "lift-trapped" && b.station == "st-north"),
        "backtest: {would:?}"
    );

    // A crew acknowledges; the ticket and its audit trail survive a restart.
    let id = t.id;
    let rules = sb.hub.rules().expect("rules running");
    rules
        .desk()
        .transition(id, TicketState::Acknowledged, "crew-7", "on our way")?;
    let sb = sb.restart().await?;
    let detail = sb.hub.tickets.get(id)?;
    assert_eq!(detail.ticket.state, TicketState::Acknowledged);
    assert!(detail
        .audit
        .iter()
        .any(|a| a.actor == "crew-7" && a.note == "on our way"));
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_alarm_sends_the_compounds_gates_to_free_passage() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    // gate-1 stands in cmp-2 with smoke-2; it listens on its command topic, as devices do.
    let gate = sb.device("gate-1", "gate-1-secret").await?;
    gate.subscribe("devices/gate-1/commands").await?;
    let smoke = sb.device("smoke-2", "smoke-2-secret").await?;
    smoke
        .publish(
            "devices/smoke-2/telemetry",
            serde_json::json!({"ts": now_ms(), "metrics": {"alarm": true, "obscuration_pct_per_m": 12.0}})
                .to_string(),
        )
        .await?;
    let received = gate.received.clone();
    assert!(
        wait_until(Duration::from_secs(15), || {
            let got = received.lock().iter().any(|(topic, body)| {
                let body = String::from_utf8_lossy(body);
                topic == "devices/gate-1/commands" && body.contains("free_passage")
            });
            async move { got }
        })
        .await,
        "gate-1 got no free-passage command; got {:?}",
        gate.received.lock()
    );
    let t = sb.hub.tickets.list(&TicketFilter {
        device_id: Some("smoke-2".into()),
        ..TicketFilter::default()
    })?;
    assert!(t.iter().any(|t| t.rule_id == "smoke-fire-alarm"
        && t.priority == Priority::P1
        && t.station == "st-acme"));
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_are_raised_while_questdb_is_down_and_rows_arrive_once_it_returns(
) -> anyhow::Result<()> {
    let mut sb = HubSandbox::start().await?;
    let qdb_stop = sb.hub.managed_questdb().expect("managed questdb");
    qdb_stop.stop();
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    let t0 = now_ms() - 60_000;
    // Paced over more flush intervals than the writer queue holds, so a stalled writer
    // would have stopped ingest (and the rules behind it) before the alarm arrives.
    for i in 0..40i64 {
        let trapped = i >= 35;
        lift.publish(
            "devices/lift-1/telemetry",
            serde_json::json!({"ts": t0 + i * 1000, "seq": i, "metrics": {"floor": 3, "trapped": trapped, "occupied": true}})
                .to_string(),
        )
        .await?;
        // Pacing the publisher is the point here, not a wait for something: spread over
        // several flush intervals, the readings would fill a stalled writer's queue.
        if i % 4 == 3 {
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    }
    lift.wait_acks(40).await?;
    // Rules do not wait for storage: the crew gets its ticket during the outage.
    let tickets = sb.hub.tickets.clone();
    let filter = TicketFilter {
        device_id: Some("lift-1".into()),
        ..TicketFilter::default()
    };
    assert!(
        wait_until(Duration::from_secs(15), || {
            let t = tickets.list(&filter).unwrap_or_default();
            async move { t.iter().any(|t| t.rule_id == "lift-trapped") }
        })
        .await,
        "no ticket while QuestDB is down"
    );
    let qdb = sb.hub.managed_questdb().expect("managed questdb");
    tokio::task::block_in_place(|| qdb.restart("512m", Duration::from_secs(90)))?;
    sb.wait_count(
        "SELECT count() FROM lift_telemetry WHERE device_id = 'lift-1'",
        40,
        Duration::from_secs(60),
    )
    .await?;
    assert_eq!(
        sb.count("SELECT count() FROM lift_telemetry WHERE device_id = 'lift-1'")
            .await?,
        40,
        "every accepted reading exactly once"
    );
    sb.shutdown().await;
    Ok(())
}
