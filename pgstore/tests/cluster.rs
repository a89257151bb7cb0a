//! Cluster mode on the PostgreSQL store: partition claims with fencing epochs, a batch
//! committed with its offsets only while its epochs hold, a late writer refused with
//! nothing written, rolled-back batches, rule state per device, schema creation by
//! several processes at once, reconnects, work orders.

mod common;

use std::time::Duration;
use steward_estate::DeviceKind;
use steward_pgstore::{Fence, Options, PgStoreError, PgTicketStore};
use steward_tickets::*;

const T0: i64 = 1_740_960_000_000;
const GROUP: &str = "steward-rules";
const TOPIC: &str = "telemetry";

fn raise(device: &str, ts: i64) -> Raise {
    Raise {
        device_id: device.into(),
        rule_id: "lift-trapped".into(),
        kind: DeviceKind::Lift,
        compound: "cmp-1".into(),
        building: "b-1".into(),
        station: "st-north".into(),
        priority: Priority::P1,
        title: "trapped".into(),
        detail: "x=1".into(),
        ts_ms: ts,
    }
}

fn fence(partition: i32, epoch: i64, next_offset: i64) -> Fence {
    Fence {
        group: GROUP.into(),
        topic: TOPIC.into(),
        partition,
        epoch,
        next_offset,
    }
}

fn tickets_of(c: &mut postgres::Client, device: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM tickets WHERE device_id = $1",
        &[&device],
    )
    .expect("count")
    .get(0)
}

#[test]
fn a_worker_that_lost_its_partition_is_fenced_and_leaves_nothing() {
    let pg = common::pg();
    let a = &pg.store;
    let b = PgTicketStore::connect(&pg.server.url()).expect("second worker");
    let policy = SlaPolicy::default();

    let first = a.claim_partition(GROUP, TOPIC, 3).expect("claim");
    assert_eq!((first.epoch, first.next_offset), (1, -1));
    // Worker A commits a batch while it owns the partition.
    a.begin_batch().unwrap();
    a.raise(&raise("lift-1", T0), &policy).unwrap();
    a.save_rule_states(&[("lift-1".into(), "{\"n\":1}".into())], T0)
        .unwrap();
    a.commit_fenced(&[fence(3, first.epoch, 100)])
        .expect("owner commits");

    // A starts another batch; meanwhile B takes the partition over.
    a.begin_batch().unwrap();
    a.raise(&raise("lift-2", T0 + 1_000), &policy).unwrap();
    a.save_rule_states(&[("lift-1".into(), "{\"n\":2}".into())], T0 + 1_000)
        .unwrap();
    let second = b.claim_partition(GROUP, TOPIC, 3).expect("take over");
    assert_eq!((second.epoch, second.next_offset), (2, 100));
    match a.commit_fenced(&[fence(3, first.epoch, 200)]) {
        Err(PgStoreError::Fenced {
            topic,
            partition,
            epoch,
            current,
        }) => {
            assert_eq!((topic.as_str(), partition), (TOPIC, 3));
            assert_eq!((epoch, current), (1, Some(2)));
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    let mut c = common::client(&pg);
    assert_eq!(
        tickets_of(&mut c, "lift-2"),
        0,
        "the late batch left nothing"
    );
    assert_eq!(tickets_of(&mut c, "lift-1"), 1);
    assert_eq!(
        b.load_rule_states_for(&["lift-1".into()]).unwrap(),
        vec![("lift-1".to_string(), "{\"n\":1}".to_string())]
    );
    // B replays from the committed offset and its offsets stand.
    b.begin_batch().unwrap();
    b.raise(&raise("lift-2", T0 + 1_000), &policy).unwrap();
    b.commit_fenced(&[fence(3, second.epoch, 200)])
        .expect("the new owner commits");
    assert_eq!(tickets_of(&mut c, "lift-2"), 1);
    let at = b
        .partition_offset(GROUP, TOPIC, 3)
        .unwrap()
        .expect("claimed");
    assert_eq!((at.epoch, at.next_offset), (2, 200));
    // A is still refused, and its store works on for the partitions it still has.
    a.begin_batch().unwrap();
    assert!(matches!(
        a.commit_fenced(&[fence(3, first.epoch, 300)]),
        Err(PgStoreError::Fenced { .. })
    ));
    let other = a.claim_partition(GROUP, TOPIC, 4).unwrap();
    a.begin_batch().unwrap();
    a.raise(&raise("lift-4", T0), &policy).unwrap();
    a.commit_fenced(&[fence(4, other.epoch, 7)]).unwrap();
    assert_eq!(tickets_of(&mut c, "lift-4"), 1);
    assert_eq!(
        b.partition_offset(GROUP, TOPIC, 3)
            .unwrap()
            .unwrap()
            .next_offset,
        200
    );
}

#[test]
fn a_rolled_back_batch_leaves_nothing_and_the_store_goes_on() {
    let pg = common::pg();
    let policy = SlaPolicy::default();
    pg.begin_batch().unwrap();
    pg.raise(&raise("lift-1", T0), &policy).unwrap();
    pg.save_rule_states(&[("lift-1".into(), "{}".into())], T0)
        .unwrap();
    // Inside the batch the store sees its own writes.
    assert!(pg.active_for("lift-1", "lift-trapped").unwrap().is_some());
    pg.rollback_batch().unwrap();
    let mut c = common::client(&pg);
    assert_eq!(tickets_of(&mut c, "lift-1"), 0);
    assert!(pg.load_rule_states().unwrap().is_empty());
    assert!(pg.active_for("lift-1", "lift-trapped").unwrap().is_none());
    // Outside a batch each call commits on its own again.
    pg.raise(&raise("lift-1", T0), &policy).unwrap();
    assert_eq!(tickets_of(&mut c, "lift-1"), 1);
}

#[test]
fn rule_states_load_per_device() {
    let pg = common::pg();
    let rows: Vec<(String, String)> = (0..5)
        .map(|i| (format!("dev-{i}"), format!("{{\"i\":{i}}}")))
        .collect();
    pg.save_rule_states(&rows, T0).unwrap();
    // A device saved twice in one call keeps its last state.
    pg.save_rule_states(
        &[
            ("dev-1".into(), "old".into()),
            ("dev-1".into(), "new".into()),
        ],
        T0 + 1,
    )
    .unwrap();
    let some = pg
        .load_rule_states_for(&["dev-3".into(), "dev-1".into(), "nobody".into()])
        .unwrap();
    assert_eq!(
        some,
        vec![
            ("dev-1".to_string(), "new".to_string()),
            ("dev-3".to_string(), "{\"i\":3}".to_string())
        ]
    );
    assert!(pg.load_rule_states_for(&[]).unwrap().is_empty());
    assert_eq!(pg.load_rule_states().unwrap().len(), 5);
}

#[test]
fn several_processes_create_the_schema_at_once() {
    let server = steward_testbed::LocalPostgres::start().expect("start PostgreSQL");
    let url = server.url();
    let stores: Vec<PgTicketStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PgTicketStore::connect(&url)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("connect"))
            .collect()
    });
    let policy = SlaPolicy::default();
    let o = stores[0].raise(&raise("lift-1", T0), &policy).unwrap();
    assert_eq!(stores[3].ticket(o.ticket.id).unwrap().device_id, "lift-1");
}

#[test]
fn a_lost_connection_is_replaced_outside_a_batch_and_fences_a_batch() {
    let pg = common::pg();
    let policy = SlaPolicy::default();
    let mut admin = common::client(&pg);
    let kill_others = |c: &mut postgres::Client| {
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = 'steward' AND pid <> pg_backend_pid()",
            &[],
        )
        .expect("terminate");
    };
    pg.raise(&raise("lift-1", T0), &policy).unwrap();
    kill_others(&mut admin);
    // The next call notices and retries once on a fresh connection.
    let o = pg.raise(&raise("lift-2", T0), &policy).expect("reconnects");
    assert!(o.created);

    let claim = pg.claim_partition(GROUP, TOPIC, 0).unwrap();
    pg.begin_batch().unwrap();
    pg.raise(&raise("lift-3", T0), &policy).unwrap();
    kill_others(&mut admin);
    // The batch died with its connection: later writes of it are refused, not
    // committed alone, and the fenced commit reports it.
    assert!(pg.raise(&raise("lift-4", T0), &policy).is_err());
    match pg.commit_fenced(&[fence(0, claim.epoch, 10)]) {
        Err(PgStoreError::Fenced { current: None, .. }) => {}
        other => panic!("expected Fenced without a current epoch, got {other:?}"),
    }
    assert_eq!(tickets_of(&mut admin, "lift-3"), 0);
    assert_eq!(tickets_of(&mut admin, "lift-4"), 0);
    // The store carries on with a new connection.
    pg.raise(&raise("lift-5", T0), &policy).unwrap();
    assert_eq!(tickets_of(&mut admin, "lift-5"), 1);
}

#[test]
fn a_frozen_batch_loses_its_locks_to_the_idle_timeout() {
    let server = steward_testbed::LocalPostgres::start().expect("start PostgreSQL");
    let opts = Options {
        idle_in_transaction_timeout: Duration::from_millis(500),
    };
    let a = PgTicketStore::connect_with(&server.url(), opts.clone()).unwrap();
    let b = PgTicketStore::connect_with(&server.url(), opts).unwrap();
    let policy = SlaPolicy::default();
    let ca = a.claim_partition(GROUP, TOPIC, 1).unwrap();
    a.begin_batch().unwrap();
    a.raise(&raise("lift-1", T0), &policy).unwrap();
    // A freezes holding the active-ticket slot of lift-1; B takes over and, once the
    // server ended A's session, writes the same ticket without waiting on A.
    let cb = b.claim_partition(GROUP, TOPIC, 1).unwrap();
    b.begin_batch().unwrap();
    let o = b.raise(&raise("lift-1", T0), &policy).unwrap();
    assert!(o.created);
    b.commit_fenced(&[fence(1, cb.epoch, 5)]).unwrap();
    assert!(matches!(
        a.commit_fenced(&[fence(1, ca.epoch, 5)]),
        Err(PgStoreError::Fenced { .. })
    ));
    assert_eq!(
        b.list(&TicketFilter::default()).unwrap().len(),
        1,
        "one ticket, not two"
    );
}

#[test]
fn work_orders_keep_their_deadline_and_open_once() {
    let pg = common::pg();
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
    let o = pg.open_work_order(&w, &policy).expect("opens");
    assert!(o.created);
    let t = o.ticket;
    assert_eq!(t.ticket_kind, "work_order");
    assert_eq!(
        (t.ack_due_ms, t.resolve_due_ms, t.on_site_due_ms),
        (7 * 86_400_000, Some(7 * 86_400_000), None)
    );
    let again = pg.open_work_order(&w, &policy).expect("opens");
    assert_eq!((again.created, again.ticket.id), (false, t.id));
    let plain = pg
        .raise(&raise("lift-9", T0), &policy)
        .unwrap()
        .ticket
        .ticket_kind;
    assert_eq!(plain, TICKET_KIND_INCIDENT);
}

#[test]
fn calls_from_an_async_runtime_thread_do_not_panic() {
    let server = steward_testbed::LocalPostgres::start().expect("start PostgreSQL");
    let url = server.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Connected, used and dropped on the runtime's own thread.
        let store = PgTicketStore::connect(&url).expect("connect");
        let policy = SlaPolicy::default();
        store.begin_batch().unwrap();
        let o = store.raise(&raise("lift-1", T0), &policy).unwrap();
        store.commit_batch().unwrap();
        assert_eq!(store.ticket(o.ticket.id).unwrap().device_id, "lift-1");
        store.claim_partition(GROUP, TOPIC, 0).unwrap();
        drop(store);
    });
}
