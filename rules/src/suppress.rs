//! Maintenance windows and device modes: what the rules would raise on a device under
//! planned work is held back and recorded instead (docs/maintenance-windows.md).
//!
//! Screening reads only immutable snapshots (the registry's [`WindowSet`] and
//! [`Directory`]) and the engine's per-device state: no database query per message. Rules
//! marked `life_safety` and device commands always pass.

use crate::engine::Action;
use crate::pack::RulePack;
use std::sync::Arc;
use steward_estate::{DeviceKind, Directory, MaintenanceWindow, WindowSet};
use steward_tickets::Priority;

/// Lift modes in which the lift counts as under maintenance.
pub const MAINTENANCE_MODES: [&str; 2] = ["inspection", "out_of_service"];

/// Why a ticket was not opened.
#[derive(Debug, Clone, PartialEq)]
pub enum Because {
    Window(Arc<MaintenanceWindow>),
    /// The lift's reported `mode`.
    DeviceMode(&'static str),
}

impl Because {
    /// The `reason` label of `steward_rules_suppressed_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Because::Window(_) => "window",
            Because::DeviceMode(_) => "device_mode",
        }
    }

    /// The `audience` of the suppressed ticket event: `window:<id>` or `mode:<mode>`.
    pub fn audience(&self) -> String {
        match self {
            Because::Window(w) => format!("window:{}", w.id),
            Because::DeviceMode(m) => format!("mode:{m}"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Because::Window(w) => format!("maintenance window `{}` ({})", w.id, w.reason),
            Because::DeviceMode(m) => format!("device mode `{m}`"),
        }
    }
}

/// A ticket a rule would have opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppressed {
    pub device_id: String,
    pub rule_id: String,
    pub station: String,
    pub compound: String,
    pub priority: Priority,
    pub title: String,
    pub ts_ms: i64,
    pub because: Because,
}

/// Why a device is under maintenance at `ts_ms`, if it is.
pub fn under_maintenance(
    windows: &WindowSet,
    kind: DeviceKind,
    device: &str,
    building: &str,
    compound: &str,
    ts_ms: i64,
    mode: Option<&'static str>,
) -> Option<Because> {
    if kind == DeviceKind::Lift {
        if let Some(m) = mode.filter(|m| MAINTENANCE_MODES.contains(m)) {
            return Some(Because::DeviceMode(m));
        }
    }
    windows
        .covering(device, building, compound, ts_ms)
        .map(|w| Because::Window(w.clone()))
}

/// Split `actions` into what goes on and what is suppressed. Raises and notifications of
/// rules that are not life-safety rules are held back while their device is under
/// maintenance at the trigger's event time; clears and commands always go on. `mode`
/// gives a device's latest reported mode.
pub fn screen(
    actions: Vec<Action>,
    pack: &RulePack,
    windows: &WindowSet,
    dir: &Directory,
    mode: &dyn Fn(&str) -> Option<&'static str>,
) -> (Vec<Action>, Vec<Suppressed>) {
    if !actions
        .iter()
        .any(|a| matches!(a, Action::Raise(_) | Action::Notify(_)))
    {
        return (actions, Vec::new());
    }
    let mut kept = Vec::with_capacity(actions.len());
    let mut held = Vec::new();
    for a in actions {
        let rule = match &a {
            Action::Raise(r) => pack.rule(&r.rule_id),
            Action::Notify(n) => pack.rule(&n.rule_id),
            _ => None,
        };
        // A rule no longer in the pack cannot be judged: let it through.
        let Some(rule) = rule.filter(|r| !r.life_safety) else {
            kept.push(a);
            continue;
        };
        match &a {
            Action::Raise(r) => {
                let because = under_maintenance(
                    windows,
                    r.kind,
                    &r.device_id,
                    &r.building,
                    &r.compound,
                    r.ts_ms,
                    mode(&r.device_id),
                );
                match because {
                    Some(because) => held.push(Suppressed {
                        device_id: r.device_id.clone(),
                        rule_id: r.rule_id.clone(),
                        station: r.station.clone(),
                        compound: r.compound.clone(),
                        priority: r.priority,
                        title: r.title.clone(),
                        ts_ms: r.ts_ms,
                        because,
                    }),
                    None => kept.push(a),
                }
            }
            Action::Notify(n) if rule.ticket => {
                // `fire` emits a rule's raise before its notification: the notification
                // shares the raise's fate, and the raise alone is recorded.
                let raise_held = held.iter().any(|s| {
                    s.device_id == n.device_id && s.rule_id == n.rule_id && s.ts_ms == n.ts_ms
                });
                if !raise_held {
                    kept.push(a);
                }
            }
            Action::Notify(n) => {
                let because = dir.device(&n.device_id).and_then(|info| {
                    under_maintenance(
                        windows,
                        info.kind,
                        &n.device_id,
                        &info.building,
                        &n.compound,
                        n.ts_ms,
                        mode(&n.device_id),
                    )
                });
                match because {
                    Some(because) => held.push(Suppressed {
                        device_id: n.device_id.clone(),
                        rule_id: n.rule_id.clone(),
                        station: n.station.clone(),
                        compound: n.compound.clone(),
                        priority: n.priority,
                        title: rule.title.clone(),
                        ts_ms: n.ts_ms,
                        because,
                    }),
                    None => kept.push(a),
                }
            }
            _ => kept.push(a),
        }
    }
    (kept, held)
}

#[cfg(test)]
#[path = "suppress_tests.rs"]
mod tests;
