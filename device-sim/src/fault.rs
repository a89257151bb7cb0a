//! Fault scenarios: each makes a model produce the condition a rule of the default pack
//! (`rules/packs/default.toml`) looks for.

use crate::SimError;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use steward_estate::DeviceKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Car stops between floors with a passenger inside, doors shut; alarm button pressed.
    LiftTrapped,
    /// Alarm button pressed while the car stands at a landing with its doors open.
    LiftAlarmButton,
    /// Doors fail to close again and again until the controller takes the lift out of service.
    LiftDoorFault,
    /// Float switch stuck: the pump keeps running after the sump is empty, at low power.
    PumpDryRun,
    /// Vibration above ISO 10816 class I zone D (4.5 mm/s) whenever the pump runs.
    PumpHighVibration,
    /// Bearing temperature above 80 C while running.
    PumpBearingHot,
    /// Pump tripped during a heavy inflow: the sump rises past high-high.
    SumpHighLevel,
    /// Smoke in the chamber: fire alarm.
    SmokeAlarm,
    /// Carbon monoxide at 400 ppm and above.
    SmokeCo,
    /// Detector reports an internal fault.
    SmokeFault,
    /// Battery below the low-battery level.
    SmokeLowBattery,
    /// Gate leaf forced open while the lock reports engaged.
    GateForced,
    /// Obstruction on closing, twice in a row, then the gate locks out open.
    GateObstruction,
    /// Gate propped open: held open grows past 5 minutes.
    GateHeldOpen,
    /// The device goes silent and drops its connection without DISCONNECT, so the broker
    /// publishes its last will.
    Offline,
}

impl Fault {
    pub const ALL: [Fault; 15] = [
        Fault::LiftTrapped,
        Fault::LiftAlarmButton,
        Fault::LiftDoorFault,
        Fault::PumpDryRun,
        Fault::PumpHighVibration,
        Fault::PumpBearingHot,
        Fault::SumpHighLevel,
        Fault::SmokeAlarm,
        Fault::SmokeCo,
        Fault::SmokeFault,
        Fault::SmokeLowBattery,
        Fault::GateForced,
        Fault::GateObstruction,
        Fault::GateHeldOpen,
        Fault::Offline,
    ];

    /// Device kind the fault applies to; `None` for faults any device can have.
    pub fn kind(self) -> Option<DeviceKind> {
        match self {
            Fault::LiftTrapped | Fault::LiftAlarmButton | Fault::LiftDoorFault => {
                Some(DeviceKind::Lift)
            }
            Fault::PumpDryRun
            | Fault::PumpHighVibration
            | Fault::PumpBearingHot
            | Fault::SumpHighLevel => Some(DeviceKind::Pump),
            Fault::SmokeAlarm | Fault::SmokeCo | Fault::SmokeFault | Fault::SmokeLowBattery => {
                Some(DeviceKind::Smoke)
            }
            Fault::GateForced | Fault::GateObstruction | Fault::GateHeldOpen => {
                Some(DeviceKind::Gate)
            }
            Fault::Offline => None,
        }
    }

    /// Kebab-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::LiftTrapped => "lift-trapped",
            Fault::LiftAlarmButton => "lift-alarm-button",
            Fault::LiftDoorFault => "lift-door-fault",
            Fault::PumpDryRun => "pump-dry-run",
            Fault::PumpHighVibration => "pump-high-vibration",
            Fault::PumpBearingHot => "pump-bearing-hot",
            Fault::SumpHighLevel => "sump-high-level",
            Fault::SmokeAlarm => "smoke-alarm",
            Fault::SmokeCo => "smoke-co",
            Fault::SmokeFault => "smoke-fault",
            Fault::SmokeLowBattery => "smoke-low-battery",
            Fault::GateForced => "gate-forced",
            Fault::GateObstruction => "gate-obstruction",
            Fault::GateHeldOpen => "gate-held-open",
            Fault::Offline => "offline",
        }
    }

    /// Simulated time after injection by which the model shows the fault's condition; a
    /// test or demo waits this long (divided by the fleet's speed) before looking.
    pub fn onset_time(self) -> Duration {
        let secs = match self {
            Fault::LiftDoorFault => 90,
            Fault::PumpDryRun => 15 * 60,
            Fault::PumpBearingHot => 2 * 60,
            Fault::SumpHighLevel => 12 * 60,
            Fault::GateObstruction => 3 * 60,
            Fault::GateHeldOpen => 6 * 60,
            Fault::Offline => 0,
            _ => 10,
        };
        Duration::from_secs(secs)
    }

    /// Whether a device of `kind` can have this fault.
    pub fn applies_to(self, kind: DeviceKind) -> bool {
        self.kind().is_none_or(|k| k == kind)
    }

    /// Every valid name, comma separated, for error and help messages.
    pub fn valid_names() -> String {
        Fault::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Fault::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| SimError::UnknownFault {
                given: s.to_string(),
                valid: Fault::valid_names(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>().ok(), Some(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(
            "Lift-Trapped".parse::<Fault>().ok(),
            Some(Fault::LiftTrapped)
        );
        assert_eq!(Fault::Offline.kind(), None);
        assert!(Fault::Offline.applies_to(DeviceKind::Gate));
        assert!(!Fault::SmokeCo.applies_to(DeviceKind::Pump));
    }

    #[test]
    fn parse_error_lists_valid_names() {
        let err = "lift-stuck"
            .parse::<Fault>()
            .expect_err("unknown name must fail")
            .to_string();
        assert!(err.contains("unknown fault `lift-stuck`"), "{err}");
        for f in Fault::ALL {
            assert!(err.contains(f.name()), "{err} misses {}", f.name());
        }
    }
}
