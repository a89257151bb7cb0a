//! A broker list with failover, as the device contract asks of devices given several
//! front ends: a connection starts on one broker of the list (spread by device index),
//! moves to the next when its connection fails, and sends again what the lost connection
//! had not got acknowledged.
//!
//! rumqttc keeps unacknowledged publishes across a reconnect only when the broker resumes
//! the session; the simulator's devices use clean sessions (as the contract asks), and a
//! different front end has no session to resume anyway, so rumqttc would drop them at the
//! next CONNACK. [`Failover`] holds them and hands them back to the new connection.

use crate::mqtt;
use rumqttc::{EventLoop, LastWill, MqttOptions, Request};
use std::collections::VecDeque;
use std::time::Duration;

/// How a connection logs in, to build its options for any broker of the list.
pub(crate) struct Login {
    pub id: String,
    pub secret: String,
    pub will: Option<LastWill>,
    pub keep_alive: Duration,
}

impl Login {
    pub fn options(&self, (host, port): &(String, u16)) -> MqttOptions {
        let mut opts = mqtt::options(&self.id, &self.secret, host, *port, self.keep_alive);
        if let Some(will) = &self.will {
            opts.set_last_will(will.clone());
        }
        opts
    }
}

/// Where a connection is in its broker list, and what it has to send again.
pub(crate) struct Failover {
    brokers: Vec<(String, u16)>,
    at: usize,
    login: Login,
    resend: VecDeque<Request>,
    /// Connection failures since the last CONNACK.
    failures: u32,
}

impl Failover {
    /// Connection number `index` starts on broker `index % n`.
    pub fn new(brokers: Vec<(String, u16)>, index: usize, login: Login) -> Failover {
        let at = index % brokers.len().max(1);
        Failover {
            brokers,
            at,
            login,
            resend: VecDeque::new(),
            failures: 0,
        }
    }

    /// Options for the broker the connection is on now.
    pub fn options(&self) -> MqttOptions {
        self.login.options(&self.brokers[self.at])
    }

    /// The broker the connection is on now, `host:port`.
    pub fn current(&self) -> String {
        let (host, port) = &self.brokers[self.at];
        format!("{host}:{port}")
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The connection failed (while connected or while connecting): keep what it had not
    /// got acknowledged, point the event loop at the next broker and say how long to wait
    /// before the next attempt. The first pass over the list waits little (another broker
    /// is likely up); once every broker failed, the pause grows as before.
    pub fn on_error(&mut self, eventloop: &mut EventLoop) -> Duration {
        self.failures += 1;
        for request in eventloop.pending.drain(..) {
            match request {
                Request::Publish(mut p) => {
                    // A new session numbers its packets afresh.
                    p.pkid = 0;
                    p.dup = false;
                    self.resend.push_back(Request::Publish(p));
                }
                Request::Disconnect(d) => self.resend.push_back(Request::Disconnect(d)),
                // Acks, pings and subscriptions belong to the lost session.
                _ => {}
            }
        }
        let n = self.brokers.len() as u32;
        if n > 1 {
            self.at = (self.at + 1) % self.brokers.len();
            eventloop.mqtt_options = self.options();
        }
        let rounds = self.failures / n.max(1);
        if rounds == 0 {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(500) * rounds.clamp(1, 10)
        }
    }

    /// Connected (CONNACK): forget the failures and start sending again.
    pub fn on_connected(&mut self, eventloop: &mut EventLoop) {
        self.failures = 0;
        self.refill(eventloop);
    }

    /// Hand kept messages to the event loop as far as its in-flight window allows (it
    /// sends `pending` without looking at the window, and too many would collide on
    /// packet ids). Called after CONNACK and after each acknowledgement.
    pub fn refill(&mut self, eventloop: &mut EventLoop) {
        if self.resend.is_empty() || eventloop.network.is_none() {
            return;
        }
        let window = usize::from(eventloop.mqtt_options.inflight());
        let busy = usize::from(eventloop.state.inflight()) + eventloop.pending.len();
        let room = window.saturating_sub(busy + 1);
        let n = room.min(self.resend.len());
        eventloop.pending.extend(self.resend.drain(..n));
    }

    /// Messages waiting to be sent again.
    pub fn backlog(&self) -> usize {
        self.resend.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::v4::Publish;
    use rumqttc::QoS;

    fn failover(brokers: usize, index: usize) -> Failover {
        let list = (0..brokers)
            .map(|i| ("127.0.0.1".to_string(), 1000 + i as u16))
            .collect();
        Failover::new(
            list,
            index,
            Login {
                id: "dev".into(),
                secret: "pw".into(),
                will: None,
                keep_alive: Duration::from_secs(30),
            },
        )
    }

    #[test]
    fn spreads_by_index_and_moves_to_the_next_broker() {
        assert_eq!(failover(2, 0).current(), "127.0.0.1:1000");
        assert_eq!(failover(2, 3).current(), "127.0.0.1:1001");
        let mut f = failover(3, 2);
        let (mut ev, _) = {
            let (client, ev) = rumqttc::AsyncClient::new(f.options(), 8);
            (ev, client)
        };
        let mut p = Publish::new("devices/dev/telemetry", QoS::AtLeastOnce, "x");
        p.pkid = 7;
        p.dup = true;
        ev.pending.push_back(Request::Publish(p));
        ev.pending.push_back(Request::PingReq(rumqttc::PingReq));
        let pause = f.on_error(&mut ev);
        assert_eq!(f.current(), "127.0.0.1:1000");
        assert_eq!(ev.mqtt_options.broker_address().1, 1000);
        assert!(pause < Duration::from_millis(500), "{pause:?}");
        assert!(ev.pending.is_empty());
        assert_eq!(f.backlog(), 1, "the ping is dropped, the publish kept");
        match f.resend.front() {
            Some(Request::Publish(p)) => assert_eq!((p.pkid, p.dup), (0, false)),
            other => panic!("{other:?}"),
        }
        // Every broker failed once: now the pause grows.
        f.on_error(&mut ev);
        assert!(f.on_error(&mut ev) >= Duration::from_millis(500));
        // Not connected: nothing is handed over yet.
        f.on_connected(&mut ev);
        assert_eq!(f.backlog(), 1);
    }
}
