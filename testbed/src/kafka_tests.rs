//! Unit tests of the Kafka cluster's set-up (ids, ports, properties, logs).
use super::*;

#[test]
fn cluster_ids_are_kafka_uuids() {
    let a = random_cluster_id();
    let b = random_cluster_id();
    assert_eq!(a.len(), 22, "{a}");
    assert_ne!(a, b);
    assert!(a
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
}

#[test]
fn replication_follows_the_cluster_size() {
    let get = |n: usize, key: &str| {
        cluster_properties(n)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    };
    assert_eq!(get(3, "default.replication.factor").as_deref(), Some("3"));
    assert_eq!(get(3, "min.insync.replicas").as_deref(), Some("2"));
    assert_eq!(get(1, "default.replication.factor").as_deref(), Some("1"));
    assert_eq!(get(1, "min.insync.replicas").as_deref(), Some("1"));
    assert_eq!(get(5, "default.replication.factor").as_deref(), Some("3"));
}

#[test]
fn missing_jars_say_how_to_fetch_them() {
    let dir = tempfile::tempdir().unwrap();
    let e = check_libs(dir.path().to_path_buf())
        .unwrap_err()
        .to_string();
    assert!(e.contains("scripts/fetch-kafka.sh"), "{e}");
    assert!(e.contains(LIBS_ENV), "{e}");
    fs::write(
        dir.path().join(format!("kafka_2.13-{KAFKA_VERSION}.jar")),
        b"",
    )
    .unwrap();
    assert!(check_libs(dir.path().to_path_buf()).is_ok());
}

#[test]
fn free_ports_are_distinct_and_outside_the_ephemeral_range() {
    let ports = free_ports(6).unwrap();
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "{ports:?}");
    let (lo, hi) = quiet_port_range();
    if hi > lo {
        assert!(ports.iter().all(|p| (lo..hi).contains(p)), "{ports:?}");
    }
}

#[test]
fn tail_keeps_the_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "a\nb\nc\nd\n").unwrap();
    assert_eq!(tail(&path, 2), "c\nd");
    assert!(log_since_contains(&path, 0, "b"));
    assert!(!log_since_contains(&path, 4, "b"));
}
