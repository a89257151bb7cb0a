//! The monthly PM-compliance report of a station or a compound: of the rounds whose
//! window opened in the month, how many were completed within their deadline.

use crate::engine::Rounds;
use crate::store::Round;
use crate::RoundsError;
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts of one schedule (or of all, in the report's totals).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ComplianceLine {
    pub schedule_id: String,
    pub rounds: u32,
    /// Completed (every item decided) by the deadline.
    pub on_time: u32,
    /// Completed after the deadline.
    pub late: u32,
    /// Open past the deadline at the time of the report.
    pub overdue: u32,
    /// Open and still within the deadline (not counted in `compliance`).
    pub in_progress: u32,
    /// Completed rounds with at least one failed item (each opened a corrective ticket).
    pub with_failures: u32,
    /// `on_time / (rounds - in_progress)`; `None` when nothing is due yet.
    pub compliance: Option<f64>,
}

impl ComplianceLine {
    fn add(&mut self, r: &Round, now_ms: i64) {
        self.rounds += 1;
        match r.completed_ms {
            Some(c) if c <= r.due_ms => self.on_time += 1,
            Some(_) => self.late += 1,
            None if now_ms > r.due_ms => self.overdue += 1,
            None => self.in_progress += 1,
        }
        if r.status == "failed" {
            self.with_failures += 1;
        }
        let decided = self.rounds - self.in_progress;
        self.compliance = (decided > 0).then(|| f64::from(self.on_time) / f64::from(decided));
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplianceReport {
    /// The station or compound id the report is for.
    pub scope: String,
    pub month: String,
    pub total: ComplianceLine,
    pub schedules: Vec<ComplianceLine>,
}

impl ComplianceReport {
    /// One CSV row per schedule, then the total (`schedule_id` = `total`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "scope,month,schedule_id,rounds,on_time,late,overdue,in_progress,with_failures,compliance\n",
        );
        for l in self.schedules.iter().chain(std::iter::once(&self.total)) {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&self.scope),
                self.month,
                csv_field(&l.schedule_id),
                l.rounds,
                l.on_time,
                l.late,
                l.overdue,
                l.in_progress,
                l.with_failures,
                l.compliance.map(|c| format!("{c:.4}")).unwrap_or_default()
            ));
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Rounds {
    /// PM compliance of `month` (`YYYY-MM`, UTC) for the rounds of a station or compound
    /// (`scope` names either), at `now_ms`.
    pub fn compliance(
        &self,
        scope: &str,
        month: &str,
        now_ms: i64,
    ) -> Result<ComplianceReport, RoundsError> {
        let (from, to) = steward_tickets::month_range(month)?;
        let mut by: BTreeMap<String, ComplianceLine> = BTreeMap::new();
        let mut total = ComplianceLine {
            schedule_id: "total".into(),
            ..Default::default()
        };
        for r in self.store().in_window(from, to)? {
            if r.station != scope && r.compound != scope {
                continue;
            }
            by.entry(r.schedule_id.clone())
                .or_insert_with(|| ComplianceLine {
                    schedule_id: r.schedule_id.clone(),
                    ..Default::default()
                })
                .add(&r, now_ms);
            total.add(&r, now_ms);
        }
        Ok(ComplianceReport {
            scope: scope.to_string(),
            month: month.to_string(),
            total,
            schedules: by.into_values().collect(),
        })
    }
}
