//! Rule files: a small typed condition language in TOML, checked against the metric
//! catalogue when loaded so a typo in a metric, an enum value or a duration is an error
//! naming the file, the rule and the key, never a rule that silently never fires.
//!
//! The forms are a closed set on purpose (no expression-language crate): every form has a
//! known state shape, which is what makes per-device state persistable and hot reload
//! able to keep it.
//!
//! A condition is a TOML table holding exactly one form, plus optional `for = "10m"` (held
//! continuously) and `only_while = "<bool metric>"` (frozen, timers paused, while false):
//!
//! | form | keys |
//! |---|---|
//! | threshold with hysteresis | `metric`, `op` (`>` `>=` `<` `<=`), `raise`, `clear` (default `raise`) |
//! | flag | `flag`, `is` (default true) |
//! | enum | `metric` with `equals` / `not_equals` / `in` / `not_in` |
//! | event | `event` (name or list): true at the event |
//! | count of events | `event`, `count`, `within` |
//! | count of raise transitions | `rises = {condition}`, `count`, `within` |
//! | absence | `silent_periods = N` (device reporting periods) or `silent_for = "10m"` |
//! | last will | `status = "offline"` |
//! | rate of change | `rate` (metric), `op`, `raise`, `clear`, `window`: change per minute |
//! | learned baseline | `metric`, `op`, `baseline_share`, `while` (bool metric), `min_samples` |
//! | combinations | `all = [..]`, `any = [..]` |
//! | compound scope | `compound = "<kind>"`, `where = {condition}` (flag, enum, threshold, status, all, any) |
//!
//! A rule with `life_safety = true` (default false) is never suppressed: a maintenance
//! window or a lift in `inspection` / `out_of_service` mode keeps other rules from opening
//! tickets, never these (docs/maintenance-windows.md). Commands are never suppressed.

mod cond;

use crate::RulesError;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use steward_estate::catalog::{self, MetricType};
use steward_estate::DeviceKind;
use steward_tickets::{OnClear, Priority};
use toml::Value as T;

/// The default pack (DESIGN.md section 5), shipped inside the binary.
pub const DEFAULT_PACK: &str = include_str!("../../packs/default.toml");
const DEFAULT_PACK_NAME: &str = "packs/default.toml";

/// Which devices a rule's command goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandTarget {
    /// The device the rule fired on.
    Device,
    /// Every non-retired device of this kind in the same compound.
    Compound(DeviceKind),
}

#[derive(Debug, Clone)]
pub struct CommandDef {
    pub target: CommandTarget,
    /// JSON object sent on `devices/{id}/commands`; the engine adds `rule`, `source_device`
    /// and `ts`.
    pub payload: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        match s {
            ">" => Some(Op::Gt),
            ">=" => Some(Op::Ge),
            "<" => Some(Op::Lt),
            "<=" => Some(Op::Le),
            _ => None,
        }
    }

    pub(crate) fn holds(self, v: f64, level: f64) -> bool {
        match self {
            Op::Gt => v > level,
            Op::Ge => v >= level,
            Op::Lt => v < level,
            Op::Le => v <= level,
        }
    }

    fn upward(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Form {
    /// Hysteresis: raised when `value op raise`, stays until `value op clear` fails.
    Threshold {
        metric: usize,
        op: Op,
        raise: f64,
        clear: f64,
    },
    Flag {
        metric: usize,
        is: bool,
    },
    /// Enum metric in (or, negated, not in) a set of catalogue values, by index.
    Enum {
        metric: usize,
        values: Vec<u16>,
        negate: bool,
    },
    /// True only while evaluating one of these events.
    Event {
        names: Vec<String>,
    },
    CountEvents {
        names: Vec<String>,
        n: usize,
        within_ms: i64,
    },
    CountRises {
        child: usize,
        n: usize,
        within_ms: i64,
    },
    /// No data for `periods` reporting periods of the device, or for `ms`.
    Silent {
        periods: Option<u32>,
        ms: Option<i64>,
    },
    /// The device's last status is its last will (`offline`) and nothing came since.
    Offline,
    /// Change of a metric per minute over a window, with hysteresis like a threshold.
    Rate {
        metric: usize,
        op: Op,
        raise: f64,
        clear: f64,
        window_ms: i64,
    },
    /// Value against a learned per-device baseline (mean while `while_flag` is true).
    Baseline {
        metric: usize,
        op: Op,
        share: f64,
        while_flag: usize,
        min_samples: u32,
    },
    All(Vec<usize>),
    Any(Vec<usize>),
    /// Some other device of `kind` in the same compound satisfies `tree` (stateless forms).
    Compound {
        kind: DeviceKind,
        tree: Box<Tree>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub form: Form,
    /// Held continuously this long before it counts.
    pub for_ms: Option<i64>,
    /// Bool metric: while it is false the node is frozen (its timers pause).
    pub only_while: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// Pre-order; the root is node 0.
    pub nodes: Vec<Node>,
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub kinds: Vec<DeviceKind>,
    pub priority: Priority,
    pub title: String,
    /// Standard or reference the rule implements.
    pub source: String,
    pub on_clear: OnClear,
    pub notify: bool,
    pub ticket: bool,
    pub commands: Vec<CommandDef>,
    /// Never suppressed by a maintenance window or a device mode (trapped passenger,
    /// fire, CO): see docs/maintenance-windows.md.
    pub life_safety: bool,
    /// File the rule came from.
    pub file: String,
    /// Hash of the condition: state is only carried across a reload when it is unchanged.
    pub(crate) fingerprint: u64,
    /// Made of events only: every matching event is an occurrence; there is no "cleared".
    pub(crate) momentary: bool,
    /// Has timers or windows that move without new data, so `tick` must evaluate it.
    pub(crate) timed: bool,
    /// Kinds referenced through `compound`: a change on those re-evaluates this rule.
    pub(crate) watches: Vec<DeviceKind>,
    /// Looks at silence: its state must not be judged against hub downtime.
    pub(crate) silence: bool,
    /// Compiled condition per device kind (indexed like `kind_index`).
    pub(crate) trees: [Option<Tree>; 4],
    /// Metrics named by the condition, per kind, for the ticket detail.
    pub(crate) metrics: [Vec<usize>; 4],
}

impl Rule {
    pub(crate) fn tree(&self, kind: DeviceKind) -> Option<&Tree> {
        self.trees[kind_index(kind)].as_ref()
    }
}

pub(crate) fn kind_index(kind: DeviceKind) -> usize {
    match kind {
        DeviceKind::Smoke => 0,
        DeviceKind::Pump => 1,
        DeviceKind::Lift => 2,
        DeviceKind::Gate => 3,
    }
}

/// A validated set of rules.
#[derive(Debug, Clone, Default)]
pub struct RulePack {
    rules: Vec<Arc<Rule>>,
    /// Rule positions per device kind.
    by_kind: [Vec<usize>; 4],
    /// Rules to re-evaluate on other devices when a device of this kind changes.
    watchers: [Vec<usize>; 4],
}

impl RulePack {
    /// The shipped default pack.
    pub fn default_pack() -> RulePack {
        // The default pack is tested; failing here means the binary itself is broken.
        Self::parse(DEFAULT_PACK, DEFAULT_PACK_NAME)
            .expect("the built-in default rule pack is valid")
    }

    pub fn parse(text: &str, name: &str) -> Result<RulePack, RulesError> {
        let mut b = Builder::default();
        b.add_text(text, name)?;
        Ok(b.finish())
    }

    pub fn load_file(path: &Path) -> Result<RulePack, RulesError> {
        let mut b = Builder::default();
        b.add_file(path)?;
        Ok(b.finish())
    }

    /// Every `*.toml` in `dir`, in name order; rule ids must be unique across files.
    pub fn load_dir(dir: &Path) -> Result<RulePack, RulesError> {
        let mut b = Builder::default();
        for f in pack_files(dir)? {
            b.add_file(&f)?;
        }
        Ok(b.finish())
    }

    /// A file or a directory of files.
    pub fn load(path: &Path) -> Result<RulePack, RulesError> {
        if path.is_dir() {
            Self::load_dir(path)
        } else {
            Self::load_file(path)
        }
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn rule(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub(crate) fn for_kind(&self, kind: DeviceKind) -> &[usize] {
        &self.by_kind[kind_index(kind)]
    }

    pub(crate) fn watchers(&self, kind: DeviceKind) -> &[usize] {
        &self.watchers[kind_index(kind)]
    }

    pub(crate) fn at(&self, i: usize) -> &Arc<Rule> {
        &self.rules[i]
    }
}

/// Rule files of a directory, sorted by name.
pub(crate) fn pack_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, RulesError> {
    let rd = std::fs::read_dir(dir).map_err(|e| RulesError::Io {
        path: dir.to_path_buf(),
        error: e,
    })?;
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[derive(Default)]
struct Builder {
    rules: Vec<Arc<Rule>>,
    ids: HashSet<String>,
}

impl Builder {
    fn add_file(&mut self, path: &Path) -> Result<(), RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Io {
            path: path.to_path_buf(),
            error: e,
        })?;
        self.add_text(&text, &path.display().to_string())
    }

    fn add_text(&mut self, text: &str, file: &str) -> Result<(), RulesError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| RulesError::Syntax {
                file: file.to_string(),
                message: e.to_string().trim().to_string(),
            })?;
        let ferr = |key: &str, message: String| RulesError::File {
            file: file.to_string(),
            key: key.to_string(),
            message,
        };
        for key in doc.keys() {
            if key != "rule" && key != "pack" {
                return Err(ferr(key, "unknown key (expected `pack` or `rule`)".into()));
            }
        }
        let Some(rules) = doc.get("rule") else {
            return Ok(());
        };
        let T::Array(rules) = rules else {
            return Err(ferr("rule", "must be an array of tables ([[rule]])".into()));
        };
        for (i, r) in rules.iter().enumerate() {
            let T::Table(t) = r else {
                return Err(ferr(&format!("rule[{i}]"), "must be a table".into()));
            };
            let id = match t.get("id") {
                Some(T::String(s)) => s.clone(),
                _ => {
                    return Err(ferr(
                        &format!("rule[{i}].id"),
                        "missing or not a string".into(),
                    ))
                }
            };
            let cx = RuleCx { file, rule: &id };
            if !valid_id(&id) {
                return Err(cx.err("id", "must be 1-64 of a-z, 0-9, `-` or `_`"));
            }
            if !self.ids.insert(id.clone()) {
                return Err(cx.err("id", "duplicate rule id"));
            }
            self.rules.push(Arc::new(cx.rule(t)?));
        }
        Ok(())
    }

    fn finish(self) -> RulePack {
        let mut pack = RulePack {
            rules: self.rules,
            ..Default::default()
        };
        for (i, r) in pack.rules.iter().enumerate() {
            for k in &r.kinds {
                pack.by_kind[kind_index(*k)].push(i);
            }
            for k in &r.watches {
                pack.watchers[kind_index(*k)].push(i);
            }
        }
        pack
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

struct RuleCx<'a> {
    file: &'a str,
    rule: &'a str,
}

const RULE_KEYS: &[&str] = &[
    "id",
    "kind",
    "priority",
    "title",
    "source",
    "on_clear",
    "notify",
    "ticket",
    "condition",
    "command",
    "life_safety",
];

#[derive(Default)]
struct Compiled {
    nodes: Vec<Node>,
    metrics: Vec<usize>,
    has_state_leaf: bool,
    has_event_leaf: bool,
    timed: bool,
    silence: bool,
    watches: Vec<DeviceKind>,
}

impl RuleCx<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> RulesError {
        RulesError::Rule {
            file: self.file.to_string(),
            rule: self.rule.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn str<'v>(&self, t: &'v toml::Table, key: &str) -> Result<Option<&'v str>, RulesError> {
        match t.get(key) {
            None => Ok(None),
            Some(T::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(key, "must be a string")),
        }
    }

    fn bool(&self, t: &toml::Table, key: &str, default: bool) -> Result<bool, RulesError> {
        match t.get(key) {
            None => Ok(default),
            Some(T::Boolean(b)) => Ok(*b),
            Some(_) => Err(self.err(key, "must be true or false")),
        }
    }

    fn rule(&self, t: &toml::Table) -> Result<Rule, RulesError> {
        for k in t.keys() {
            if !RULE_KEYS.contains(&k.as_str()) {
                return Err(self.err(
                    k,
                    format!("unknown key (expected one of {})", RULE_KEYS.join(", ")),
                ));
            }
        }
        let kinds = self.kinds(t.get("kind"))?;
        let priority = match self.str(t, "priority")? {
            None => return Err(self.err("priority", "missing (P1, P2 or P3)")),
            Some(p) => Priority::parse(p)
                .ok_or_else(|| self.err("priority", format!("`{p}` is not P1, P2 or P3")))?,
        };
        let title = self
            .str(t, "title")?
            .ok_or_else(|| self.err("title", "missing"))?
            .to_string();
        let source = self.str(t, "source")?.unwrap_or_default().to_string();
        let notify = self.bool(t, "notify", true)?;
        let ticket = self.bool(t, "ticket", true)?;
        let life_safety = self.bool(t, "life_safety", false)?;
        let cond = t
            .get("condition")
            .ok_or_else(|| self.err("condition", "missing"))?;
        let mut trees: [Option<Tree>; 4] = Default::default();
        let mut metrics: [Vec<usize>; 4] = Default::default();
        let (mut state_leaf, mut timed, mut silence) = (false, false, false);
        let mut watches = Vec::new();
        for k in &kinds {
            let mut c = Compiled::default();
            self.cond(cond, "condition", *k, &mut c, false)?;
            state_leaf |= c.has_state_leaf;
            timed |= c.timed;
            silence |= c.silence;
            for w in c.watches {
                if !watches.contains(&w) {
                    watches.push(w);
                }
            }
            trees[kind_index(*k)] = Some(Tree { nodes: c.nodes });
            metrics[kind_index(*k)] = c.metrics;
        }
        let momentary = !state_leaf;
        let on_clear = match self.str(t, "on_clear")? {
            None if momentary => OnClear::Ignore,
            None => OnClear::Record,
            Some("record") => OnClear::Record,
            Some("resolve") => OnClear::Resolve,
            Some("close") => OnClear::Close,
            Some("ignore") => OnClear::Ignore,
            Some(o) => {
                return Err(self.err(
                    "on_clear",
                    format!("`{o}` is not record, resolve, close or ignore"),
                ))
            }
        };
        let commands = self.commands(t.get("command"))?;
        if !ticket && !notify && commands.is_empty() {
            return Err(self.err(
                "ticket",
                "the rule neither raises a ticket, notifies nor commands",
            ));
        }
        Ok(Rule {
            id: self.rule.to_string(),
            kinds,
            priority,
            title,
            source,
            on_clear,
            notify,
            ticket,
            commands,
            life_safety,
            file: self.file.to_string(),
            fingerprint: fnv1a(cond.to_string().as_bytes()),
            momentary,
            timed,
            watches,
            silence,
            trees,
            metrics,
        })
    }

    fn kinds(&self, v: Option<&T>) -> Result<Vec<DeviceKind>, RulesError> {
        let one = |s: &str| -> Result<Vec<DeviceKind>, RulesError> {
            if s == "any" {
                return Ok(DeviceKind::ALL.to_vec());
            }
            s.parse::<DeviceKind>()
                .map(|k| vec![k])
                .map_err(|e| self.err("kind", e))
        };
        let kinds = match v {
            None => return Err(self.err("kind", "missing (smoke, pump, lift, gate or any)")),
            Some(T::String(s)) => one(s)?,
            Some(T::Array(a)) if !a.is_empty() => {
                let mut out = Vec::new();
                for x in a {
                    let T::String(s) = x else {
                        return Err(self.err("kind", "must be a string or a list of strings"));
                    };
                    for k in one(s)? {
                        if !out.contains(&k) {
                            out.push(k);
                        }
                    }
                }
                out
            }
            Some(_) => return Err(self.err("kind", "must be a string or a non-empty list")),
        };
        Ok(kinds)
    }

    fn commands(&self, v: Option<&T>) -> Result<Vec<CommandDef>, RulesError> {
        let list = match v {
            None => return Ok(Vec::new()),
            Some(T::Array(a)) => a.as_slice(),
            Some(t @ T::Table(_)) => std::slice::from_ref(t),
            Some(_) => return Err(self.err("command", "must be a table or [[rule.command]]")),
        };
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let key = |k: &str| format!("command[{i}].{k}");
            let T::Table(t) = c else {
                return Err(self.err(&format!("command[{i}]"), "must be a table"));
            };
            for k in t.keys() {
                if !["target", "kind", "payload"].contains(&k.as_str()) {
                    return Err(self.err(&key(k), "unknown key (expected target, kind, payload)"));
                }
            }
            let target = match t.get("target") {
                None | Some(T::String(_)) => {
                    match t.get("target").and_then(T::as_str).unwrap_or("compound") {
                        "self" => CommandTarget::Device,
                        "compound" => {
                            let k = t.get("kind").and_then(T::as_str).ok_or_else(|| {
                                self.err(&key("kind"), "missing: the device kind to command")
                            })?;
                            CommandTarget::Compound(
                                k.parse().map_err(|e: String| self.err(&key("kind"), e))?,
                            )
                        }
                        o => {
                            return Err(self
                                .err(&key("target"), format!("`{o}` is not `self` or `compound`")))
                        }
                    }
                }
                Some(_) => return Err(self.err(&key("target"), "must be a string")),
            };
            let payload = match t.get("payload") {
                Some(T::Table(p)) => match serde_json::to_value(p) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => return Err(self.err(&key("payload"), "cannot be expressed as JSON")),
                },
                _ => return Err(self.err(&key("payload"), "missing or not a table")),
            };
            out.push(CommandDef { target, payload });
        }
        Ok(out)
    }

    fn duration(&self, v: &T, key: &str) -> Result<i64, RulesError> {
        let T::String(s) = v else {
            return Err(self.err(key, "must be a duration string such as \"10m\""));
        };
        match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() => Ok(d.as_millis().min(i64::MAX as u128) as i64),
            Ok(_) => Err(self.err(key, "must be longer than zero")),
            Err(_) => Err(self.err(key, format!("invalid duration \"{s}\""))),
        }
    }

    fn number(&self, v: Option<&T>, key: &str) -> Result<f64, RulesError> {
        match v {
            Some(T::Integer(i)) => Ok(*i as f64),
            Some(T::Float(f)) if f.is_finite() => Ok(*f),
            Some(_) => Err(self.err(key, "must be a finite number")),
            None => Err(self.err(key, "missing")),
        }
    }

    fn count(&self, v: Option<&T>, key: &str) -> Result<usize, RulesError> {
        match v {
            Some(T::Integer(i)) if (1..=100_000).contains(i) => Ok(*i as usize),
            Some(_) => Err(self.err(key, "must be an integer from 1 to 100000")),
            None => Err(self.err(key, "missing")),
        }
    }

    fn metric(
        &self,
        kind: DeviceKind,
        v: Option<&T>,
        key: &str,
        c: &mut Compiled,
    ) -> Result<(usize, MetricType), RulesError> {
        let name = match v {
            Some(T::String(s)) => s,
            _ => return Err(self.err(key, "missing or not a metric name")),
        };
        let pos = catalog::metrics(kind)
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| self.err(key, format!("`{name}` is not a {kind} metric")))?;
        if !c.metrics.contains(&pos) {
            c.metrics.push(pos);
        }
        Ok((pos, catalog::metrics(kind)[pos].ty))
    }

    fn op(&self, v: Option<&T>, key: &str) -> Result<Op, RulesError> {
        match v {
            Some(T::String(s)) => {
                Op::parse(s).ok_or_else(|| self.err(key, format!("`{s}` is not >, >=, < or <=")))
            }
            _ => Err(self.err(key, "missing (>, >=, < or <=)")),
        }
    }

    fn names(&self, v: &T, kind: DeviceKind, key: &str) -> Result<Vec<String>, RulesError> {
        let list: Vec<&str> = match v {
            T::String(s) => vec![s],
            T::Array(a) if !a.is_empty() => a
                .iter()
                .map(|x| x.as_str().ok_or_else(|| self.err(key, "must list strings")))
                .collect::<Result<_, _>>()?,
            _ => return Err(self.err(key, "must be an event name or a list of them")),
        };
        for n in &list {
            if !catalog::events(kind).contains(n) && !n.starts_with(catalog::VENDOR_PREFIX) {
                return Err(self.err(
                    key,
                    format!(
                        "`{n}` is not a {kind} event (expected one of {})",
                        catalog::events(kind).join(", ")
                    ),
                ));
            }
        }
        Ok(list.into_iter().map(String::from).collect())
    }
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
