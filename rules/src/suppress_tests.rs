use super::*;
use crate::engine::Notification;
use steward_estate::{WindowSource, WindowTarget};
use steward_tickets::{alerts_topic, Raise};

fn raise(rule: &str, device: &str, kind: DeviceKind, ts_ms: i64) -> Action {
    Action::Raise(Raise {
        device_id: device.into(),
        rule_id: rule.into(),
        kind,
        compound: "cmp-1".into(),
        building: "b-1".into(),
        station: "st-1".into(),
        priority: Priority::P2,
        title: "t".into(),
        detail: String::new(),
        ts_ms,
    })
}

fn notify(rule: &str, device: &str, ts_ms: i64) -> Action {
    Action::Notify(Notification {
        station: "st-1".into(),
        topic: alerts_topic("st-1"),
        device_id: device.into(),
        compound: "cmp-1".into(),
        rule_id: rule.into(),
        priority: Priority::P2,
        message: "m".into(),
        ts_ms,
    })
}

fn building_window(from_ms: i64, to_ms: i64) -> WindowSet {
    WindowSet::new(vec![MaintenanceWindow {
        id: "w-1".into(),
        target: WindowTarget::Building("b-1".into()),
        from_ms,
        to_ms,
        reason: "pump overhaul".into(),
        source: WindowSource::Api,
        created_by: None,
    }])
}

fn rule_ids(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Raise(r) => format!("raise {}", r.rule_id),
            Action::Clear(c) => format!("clear {}", c.rule_id),
            Action::Notify(n) => format!("notify {}", n.rule_id),
            Action::Command { device_id, .. } => format!("command {device_id}"),
        })
        .collect()
}

#[test]
fn the_default_pack_marks_life_safety_rules() {
    let pack = RulePack::default_pack();
    let marked: Vec<&str> = pack
        .rules()
        .iter()
        .filter(|r| r.life_safety)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        marked,
        [
            "lift-trapped",
            "smoke-fire-alarm",
            "smoke-co",
            "gate-fire-not-free"
        ]
    );
}

#[test]
fn a_window_holds_back_other_rules_never_life_safety_nor_commands() {
    let pack = RulePack::default_pack();
    let windows = building_window(1_000, 2_000);
    let dir = Directory::default();
    let no_mode = |_: &str| None;
    let actions = vec![
        raise("pump-dry-run", "pump-1", DeviceKind::Pump, 1_500),
        notify("pump-dry-run", "pump-1", 1_500),
        raise("smoke-fire-alarm", "smoke-1", DeviceKind::Smoke, 1_500),
        raise("smoke-co", "smoke-1", DeviceKind::Smoke, 1_500),
        raise("lift-trapped", "lift-1", DeviceKind::Lift, 1_500),
        raise("gate-fire-not-free", "gate-1", DeviceKind::Gate, 1_500),
        Action::Command {
            device_id: "gate-1".into(),
            topic: "devices/gate-1/commands".into(),
            payload: "{}".into(),
        },
        Action::Clear(steward_tickets::Clear {
            device_id: "pump-1".into(),
            rule_id: "pump-dry-run".into(),
            on_clear: steward_tickets::OnClear::Record,
            ts_ms: 1_600,
        }),
        // Outside the window (to is exclusive): goes on.
        raise("pump-bearing-hot", "pump-1", DeviceKind::Pump, 2_000),
    ];
    let (kept, held) = screen(actions, &pack, &windows, &dir, &no_mode);
    assert_eq!(
        rule_ids(&kept),
        [
            "raise smoke-fire-alarm",
            "raise smoke-co",
            "raise lift-trapped",
            "raise gate-fire-not-free",
            "command gate-1",
            "clear pump-dry-run",
            "raise pump-bearing-hot",
        ]
    );
    // The raise is recorded once; its notification is dropped with it.
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].rule_id, "pump-dry-run");
    assert_eq!(held[0].because.label(), "window");
    assert_eq!(held[0].because.audience(), "window:w-1");
}

#[test]
fn a_lift_in_inspection_or_out_of_service_is_under_maintenance() {
    let pack = RulePack::default_pack();
    let windows = WindowSet::default();
    let dir = Directory::default();
    for (mode, held_back) in [
        (Some("inspection"), true),
        (Some("out_of_service"), true),
        (Some("normal"), false),
        (Some("fire"), false),
        (None, false),
    ] {
        let actions = vec![
            raise("lift-door-fault", "lift-1", DeviceKind::Lift, 10),
            raise("lift-trapped", "lift-1", DeviceKind::Lift, 10),
        ];
        let (kept, held) = screen(actions, &pack, &windows, &dir, &|_| mode);
        assert_eq!(held.len(), usize::from(held_back), "{mode:?}");
        assert_eq!(kept.len(), 2 - usize::from(held_back), "{mode:?}");
        if held_back {
            assert_eq!(held[0].because, Because::DeviceMode(mode.unwrap()));
            assert_eq!(held[0].because.label(), "device_mode");
            assert!(rule_ids(&kept).contains(&"raise lift-trapped".to_string()));
        }
    }
    // Only lifts have maintenance modes.
    let (kept, held) = screen(
        vec![raise("gate-lockout", "gate-1", DeviceKind::Gate, 10)],
        &pack,
        &windows,
        &dir,
        &|_| Some("inspection"),
    );
    assert_eq!((kept.len(), held.len()), (1, 0));
}

#[test]
fn life_safety_is_a_validated_rule_key() {
    let rule = |v: &str| {
        format!(
            "[[rule]]\nid = \"r\"\nkind = \"pump\"\npriority = \"P1\"\ntitle = \"t\"\n\
             life_safety = {v}\ncondition = {{ flag = \"running\" }}\n"
        )
    };
    let p = RulePack::parse(&rule("true"), "x.toml").unwrap();
    assert!(p.rules()[0].life_safety);
    let err = RulePack::parse(&rule("\"yes\""), "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x.toml: rule r: life_safety: must be true or false"),
        "{err}"
    );
}
