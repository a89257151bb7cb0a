//! The ticket kind: `incident` by default, also for tickets of a database created before
//! the column existed; `work_order` with the round's deadline for planned rounds.

use steward_tickets::{Priority, SlaPolicy, SqliteTicketStore, TicketStore, WorkOrder};

#[test]
fn old_databases_gain_the_kind_and_work_orders_keep_their_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tickets.db");
    {
        // A ticket table as it was before `ticket_kind`, with one ticket in it.
        let conn = rusqlite::Connection::open(&path).expect("open");
        let store = SqliteTicketStore::open(&path).expect("store");
        drop(store);
        conn.execute_batch(
            "ALTER TABLE tickets DROP COLUMN ticket_kind;
             INSERT INTO tickets(device_id, rule_id, kind, compound, building, station,
                priority, title, detail, state, active, opened_ms, last_seen_ms, occurrences,
                condition_active, ack_due_ms)
             VALUES('lift-1','lift-trapped','lift','cmp-1','b-1','st-1','P1','t','','open',
                1,0,0,1,1,60000);",
        )
        .expect("old schema");
    }
    let store = SqliteTicketStore::open(&path).expect("migrates");
    assert_eq!(store.ticket(1).expect("old ticket").ticket_kind, "incident");
    let w = WorkOrder {
        device_id: "lift-1".into(),
        rule_id: "round:lift-half-monthly:2026-03-01".into(),
        kind: "lift".into(),
        compound: "cmp-1".into(),
        building: "b-1".into(),
        station: "st-1".into(),
        priority: Priority::P3,
        title: "Lift maintenance".into(),
        detail: String::new(),
        ts_ms: 1_000,
        ticket_kind: "work_order".into(),
        resolve_due_ms: Some(7 * 86_400_000),
    };
    let policy = SlaPolicy::default();
    let o = store.open_work_order(&w, &policy).expect("opens");
    assert!(o.created);
    let t = o.ticket;
    assert_eq!(t.ticket_kind, "work_order");
    assert_eq!(
        (t.ack_due_ms, t.resolve_due_ms, t.on_site_due_ms),
        (7 * 86_400_000, Some(7 * 86_400_000), None)
    );
    // Opening the same round again finds the same ticket.
    let again = store.open_work_order(&w, &policy).expect("opens");
    assert_eq!((again.created, again.ticket.id), (false, t.id));
}
