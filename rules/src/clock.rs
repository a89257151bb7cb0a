//! Time source of the rules service. Evaluation itself never reads a clock: readings carry
//! their event time and timers are advanced by `tick(now_ms)`, so tests and backtests can
//! drive time by hand. The clock is shared with the ticket desk, which stamps crews' moves.

pub use steward_tickets::clock::{Clock, ManualClock, SystemClock};
