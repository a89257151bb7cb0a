//! The estate change log on a real PostgreSQL: appends from several connections at once
//! become visible in id order, so a reader moving a cursor never skips one.

use serde_json::json;
use steward_pgstore::PgEstateLog;

#[test]
fn appends_read_back_in_order_from_any_connection() {
    let server = steward_testbed::LocalPostgres::start().expect("start PostgreSQL");
    let url = server.url();
    let reader = PgEstateLog::connect(&url).expect("connect");
    assert_eq!(reader.last_id().expect("last"), 0);
    assert_eq!(reader.append("a", &[]).expect("append nothing"), None);
    std::thread::scope(|s| {
        for origin in ["a", "b", "c"] {
            let url = url.clone();
            s.spawn(move || {
                let log = PgEstateLog::connect(&url).expect("connect");
                for i in 0..20 {
                    let batch = [json!({"n": i, "part": 0}), json!({"n": i, "part": 1})];
                    log.append(origin, &batch).expect("append");
                }
            });
        }
        // Read while they write: were an id committed after a greater one was read, the
        // cursor would pass it and this would never see all 120.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut cursor = 0;
        let mut seen = 0;
        while seen < 120 {
            assert!(
                std::time::Instant::now() < deadline,
                "only {seen} of 120 appends seen through the cursor"
            );
            let rows = reader.after(cursor, 7).expect("after");
            if rows.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            for (id, _, _) in rows {
                assert!(id > cursor);
                cursor = id;
                seen += 1;
            }
        }
        assert_eq!(seen, 120);
    });
    let all = reader.after(0, 1000).expect("after");
    assert_eq!(all.len(), 120);
    assert_eq!(reader.last_id().expect("last"), all[119].0);
    // Each batch lands whole and in its order.
    for origin in ["a", "b", "c"] {
        let mine: Vec<_> = all.iter().filter(|r| r.1 == origin).map(|r| &r.2).collect();
        for (k, v) in mine.iter().enumerate() {
            assert_eq!(**v, json!({"n": k / 2, "part": k % 2}));
        }
    }
    let ids: Vec<i64> = all.iter().map(|r| r.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}
