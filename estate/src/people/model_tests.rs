//! The people model end to end: file -> registry -> snapshot, restart, bad input.

use crate::people::Management;
use crate::{EstateError, EstateFile, Registry};
use std::collections::BTreeSet;

pub(crate) const EXAMPLE: &str = r#"
timezone = "Asia/Shanghai"

[district]
id = "dist-1"
name = "Riverside District"
duty_officer = "p-zhou"

[[people]]
id = "p-wang"
name = "Wang Wu"
phone = "+86 138 0000 0001"
email = "wang@example.com"
channels = ["crew-hook", "sms"]
[[people]]
id = "p-li"
name = "Li Si"
phone = "13800000002"
[[people]]
id = "p-zhao"
name = "Zhao Liu"
[[people]]
id = "p-chen"
name = "Chen Qi"
channels = ["captains-robot"]
[[people]]
id = "p-qian"
name = "Qian Ba"
[[people]]
id = "p-sun"
name = "Sun Jiu"
[[people]]
id = "p-zhou"
name = "Zhou Shi"

[[stations]]
id = "st-riverside"
name = "Riverside station"
head = "p-zhao"
[[stations]]
id = "st-acme"
name = "Acme station"

[[streets]]
id = "street-riverside"
name = "Riverside Street"
fallback_station = "st-riverside"
duty_officer = "p-sun"

[[communities]]
id = "com-elm"
name = "Elm"
street = "street-riverside"

[[compounds]]
id = "cmp-elm-court"
name = "Elm Court"
community = "com-elm"
management = "state_fallback"
takeover_date = "2025-06-01"
[[compounds]]
id = "cmp-oak"
name = "Oak Yard"
community = "com-elm"
property_company = "Acme PM"
station = "st-acme"
[[compounds]]
id = "cmp-mill"
name = "Mill Row"
community = "com-elm"

[[buildings]]
id = "b-elm-court-1"
name = "Block 1"
compound = "cmp-elm-court"
[[buildings]]
id = "b-oak-1"
name = "Block 1"
compound = "cmp-oak"

[[crews]]
id = "crew-riverside-a"
name = "Riverside crew A"
station = "st-riverside"
members = ["p-wang", "p-li"]
[[crews]]
id = "crew-riverside-b"
name = "Riverside crew B"
station = "st-riverside"
members = ["p-li"]

[[grid_cells]]
id = "grid-1"
name = "Grid 1"
street = "street-riverside"
manager = "p-qian"
compounds = ["cmp-elm-court"]

[[captains]]
person = "p-chen"
buildings = ["b-elm-court-1"]

[[rotas]]
station = "st-riverside"
  [[rotas.shifts]]
  days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
  start = "08:00"
  end = "20:00"
  person = "p-wang"
  [[rotas.shifts]]
  days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
  start = "20:00"
  end = "08:00"
  person = "p-li"
  [[rotas.overrides]]
  from = "2026-12-24T08:00"
  to = "2026-12-25T08:00"
  person = "p-zhao"
"#;

fn ids(v: Vec<&crate::Person>) -> Vec<&str> {
    v.into_iter().map(|p| p.id.as_str()).collect()
}

/// 2026-12-02 (a Wednesday) at a local Shanghai time, as ms.
fn shanghai(hh: i64, mm: i64) -> i64 {
    // 2026-12-02T00:00Z is 1_796_169_600_000; Shanghai is 8 hours ahead.
    let midnight = 1_796_169_600_000 - 8 * 3_600_000;
    midnight + (hh * 60 + mm) * 60_000
}

#[test]
fn example_loads_and_answers_every_question() {
    let file = EstateFile::parse(EXAMPLE).expect("example parses");
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("estate.db");
    let reg = Registry::open(&path).expect("open");
    reg.apply(&file).expect("apply");
    let check = |reg: &Registry| {
        let p = reg.people();
        assert_eq!(p.timezone(), chrono_tz::Asia::Shanghai);
        assert_eq!(p.all().len(), 7);
        assert_eq!(
            p.person("p-wang").and_then(|w| w.phone.clone()).as_deref(),
            Some("+86 138 0000 0001")
        );
        assert_eq!(ids(p.on_call("st-riverside", shanghai(7, 59))), ["p-li"]);
        assert_eq!(ids(p.on_call("st-riverside", shanghai(8, 1))), ["p-wang"]);
        assert!(p.on_call("st-acme", shanghai(8, 1)).is_empty());
        assert!(p.on_call("st-nowhere", shanghai(8, 1)).is_empty());
        assert_eq!(ids(p.crew_members("st-riverside")), ["p-wang", "p-li"]);
        assert_eq!(
            p.crew_of("st-riverside", "p-li").map(|c| c.id.as_str()),
            Some("crew-riverside-a")
        );
        assert_eq!(
            p.station_head("st-riverside").map(|h| h.id.as_str()),
            Some("p-zhao")
        );
        assert!(p.station_head("st-acme").is_none());
        assert_eq!(ids(p.captains("b-elm-court-1")), ["p-chen"]);
        assert!(p.captains("b-oak-1").is_empty());
        assert_eq!(p.captain_buildings("p-chen"), ["b-elm-court-1"]);
        assert_eq!(
            p.grid_manager("cmp-elm-court").map(|x| x.id.as_str()),
            Some("p-qian")
        );
        assert!(p.grid_manager("cmp-oak").is_none());
        assert_eq!(
            p.street_duty_officer("street-riverside")
                .map(|x| x.id.as_str()),
            Some("p-sun")
        );
        assert_eq!(
            p.district_duty_officer().map(|x| x.id.as_str()),
            Some("p-zhou")
        );
        let elm = p.compound("cmp-elm-court").expect("elm");
        assert_eq!(elm.management, Management::StateFallback);
        assert_eq!(
            elm.takeover_date.map(|d| d.to_string()).as_deref(),
            Some("2025-06-01")
        );
        assert_eq!(
            p.compound("cmp-oak").map(|c| c.management),
            Some(Management::PropertyCompany)
        );
        assert_eq!(
            p.compound("cmp-mill").map(|c| c.management),
            Some(Management::None)
        );
        assert_eq!(p.building_station("b-oak-1"), Some("st-acme"));
        assert_eq!(p.station_buildings("st-riverside"), ["b-elm-court-1"]);
        assert_eq!(
            ids(p.rota_people("st-riverside")),
            ["p-li", "p-wang", "p-zhao"]
        );
        for used in ["p-wang", "p-li", "p-zhao", "p-chen"] {
            assert!(p.station_uses("st-riverside", used), "{used}");
        }
        assert!(!p.station_uses("st-riverside", "p-sun"));
        assert!(!p.station_uses("st-acme", "p-wang"));
        let known: BTreeSet<String> = ["crew-hook".to_string(), "sms".into()].into();
        assert_eq!(
            p.check_channels(&known),
            ["people[p-chen].channels: unknown channel `captains-robot`"]
        );
    };
    check(&reg);
    drop(reg);
    // After a restart the registry answers from the database alone.
    let reg = Registry::open(&path).expect("reopen");
    check(&reg);
    // Someone removed from the file is gone after the next apply.
    let smaller = EXAMPLE.replace("captains-robot", "sms").replace(
        "[[captains]]\nperson = \"p-chen\"\nbuildings = [\"b-elm-court-1\"]\n",
        "",
    );
    reg.apply(&EstateFile::parse(&smaller).expect("smaller"))
        .expect("apply");
    assert!(reg.people().captains("b-elm-court-1").is_empty());
}

fn errors(text: &str) -> Vec<String> {
    match EstateFile::parse(text) {
        Err(EstateError::Invalid(e)) => e,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn each_problem_names_its_key() {
    let cases: Vec<(String, &str)> = vec![
        (
            EXAMPLE.replace("\"Asia/Shanghai\"", "\"Mars/Olympus\""),
            "timezone: unknown time zone `Mars/Olympus`",
        ),
        (
            EXAMPLE.replace("duty_officer = \"p-zhou\"", "duty_officer = \"p-nobody\""),
            "district.duty_officer: unknown person `p-nobody`",
        ),
        (
            EXAMPLE.replace("head = \"p-zhao\"", "head = \"p-x\""),
            "stations[0].head: unknown person `p-x`",
        ),
        (
            EXAMPLE.replace("duty_officer = \"p-sun\"", "duty_officer = \"p-x\""),
            "streets[0].duty_officer: unknown person `p-x`",
        ),
        (
            EXAMPLE.replace("members = [\"p-li\"]", "members = [\"p-ghost\"]"),
            "crews[1].members: unknown person `p-ghost`",
        ),
        (
            EXAMPLE.replace("station = \"st-riverside\"\nmembers", "station = \"st-9\"\nmembers"),
            "crews[0].station: unknown station `st-9`",
        ),
        (
            EXAMPLE.replace("buildings = [\"b-elm-court-1\"]", "buildings = [\"b-9\"]"),
            "captains[0].buildings: unknown building `b-9`",
        ),
        (
            EXAMPLE.replace("person = \"p-chen\"", "person = \"p-9\""),
            "captains[0].person: unknown person `p-9`",
        ),
        (
            EXAMPLE.replace("manager = \"p-qian\"", "manager = \"p-9\""),
            "grid_cells[0].manager: unknown person `p-9`",
        ),
        (
            EXAMPLE.replace("compounds = [\"cmp-elm-court\"]", "compounds = [\"cmp-9\"]"),
            "grid_cells[0].compounds: unknown compound `cmp-9`",
        ),
        (
            format!(
                "{EXAMPLE}\n[[grid_cells]]\nid = \"grid-2\"\nname = \"G2\"\nstreet = \"street-riverside\"\ncompounds = [\"cmp-elm-court\"]\n"
            ),
            "grid_cells[1].compounds: compound `cmp-elm-court` is already in grid cell `grid-1`",
        ),
        (
            EXAMPLE.replace("id = \"p-li\"", "id = \"p-wang\""),
            "people[1].id: duplicate id `p-wang`",
        ),
        (
            EXAMPLE.replace("takeover_date = \"2025-06-01\"", "takeover_date = \"June 2025\""),
            "compounds[0].takeover_date: `June 2025` is not a date YYYY-MM-DD",
        ),
        (
            EXAMPLE.replace("person = \"p-zhao\"", "person = \"p-stranger\""),
            "rotas[0].overrides[0].person: unknown person `p-stranger`",
        ),
        (
            EXAMPLE.replace("end = \"08:00\"", "end = \"09:00\""),
            "rotas[0].shifts[1]: overlaps rotas[0].shifts[0]",
        ),
        (
            EXAMPLE.replace("start = \"20:00\"", "start = \"8pm\""),
            "rotas[0].shifts[1].start: `8pm` is not a time HH:MM",
        ),
        (
            format!("{EXAMPLE}\n[[rotas]]\nstation = \"st-riverside\"\n"),
            "rotas[1].station: station `st-riverside` already has rotas[0]",
        ),
        (
            EXAMPLE.replace("email = \"wang@example.com\"", "email = \"wang\""),
            "people[0].email: not an email address",
        ),
    ];
    for (text, want) in cases {
        let e = errors(&text);
        assert!(e.iter().any(|m| m.starts_with(want)), "{want}:\n{e:#?}");
    }
    // A stand-in who is in no crew of the station may still be on the rota.
    assert!(EstateFile::parse(&EXAMPLE.replace(
        "person = \"p-li\"\n  [[rotas.overrides]]",
        "person = \"p-sun\"\n  [[rotas.overrides]]"
    ))
    .is_ok());
    // Unknown keys are refused by the parser.
    let bad = EXAMPLE.replace("channels = [\"captains-robot\"]", "chanels = []");
    assert!(matches!(
        EstateFile::parse(&bad),
        Err(EstateError::Parse { .. })
    ));
    let bad = EXAMPLE.replace(
        "management = \"state_fallback\"",
        "management = \"anarchy\"",
    );
    assert!(matches!(
        EstateFile::parse(&bad),
        Err(EstateError::Parse { .. })
    ));
}

#[test]
fn the_demo_estate_has_people() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/estate.toml");
    let file = EstateFile::load(&path).expect("demo estate loads");
    let reg = Registry::open_in_memory().expect("open");
    reg.apply(&file).expect("apply");
    let p = reg.people();
    assert_eq!(ids(p.on_call("st-riverside", shanghai(7, 59))), ["p-li"]);
    assert_eq!(ids(p.on_call("st-riverside", shanghai(8, 1))), ["p-wang"]);
    assert_eq!(ids(p.captains("b-elm-court-2")), ["p-chen"]);
    assert!(p.street_duty_officer("street-riverside").is_some());
    assert!(p.district_duty_officer().is_some());
    assert!(p.grid_manager("cmp-mill-row").is_some());
    assert!(
        p.check_channels(&BTreeSet::new()).is_empty(),
        "no channels in the demo"
    );
}

#[test]
fn a_file_on_disk_names_itself_the_key_and_the_reason() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("estate.toml");
    let bad = EXAMPLE.replace("members = [\"p-li\"]", "members = [\"p-ghost\"]");
    std::fs::write(&path, bad).expect("write");
    let err = EstateFile::load(&path).expect_err("refused").to_string();
    assert!(
        err.starts_with(&format!("invalid estate file {}: ", path.display()))
            && err.contains("crews[1].members: unknown person `p-ghost`"),
        "{err}"
    );
}
