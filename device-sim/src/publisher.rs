//! One load connection: an MQTT 3.1.1 session over TCP that only publishes.
//!
//! rumqttc's event loop writes and flushes each publish on its own (one `writev` per
//! message), keeps a copy of every QoS 1 publish for retransmission and hands each
//! acknowledgement back as an event; profiled under the end-to-end benchmark, that made the
//! load generator the largest user of the two shared cores after QuestDB (half the bench
//! process's CPU). A load connection needs none of it: it encodes publishes back to back
//! into one buffer, writes the buffer in one call and counts acknowledgements as they
//! arrive. Packets are encoded and decoded by rumqttc's `mqttbytes`, so the wire format is
//! still the well-tested one; only the I/O loop is ours. Simulated devices (the fleet) keep
//! the full rumqttc client.

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Disconnect, Packet, PingReq, PubRel, Publish,
};
use rumqttc::mqttbytes::Error as WireError;
use rumqttc::QoS;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// Largest packet accepted from the broker (acks are 4 bytes; this only bounds garbage).
const MAX_INCOMING: usize = 64 * 1024;
/// Publishes are encoded into one buffer until it holds this much, then written at once.
const WRITE_BATCH: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("mqtt: {0:?}")]
    Wire(WireError),
    #[error("login refused: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("broker sent {0}, expected CONNACK")]
    Unexpected(&'static str),
    #[error("no CONNACK in time")]
    Timeout,
    #[error("broker closed the connection")]
    Closed,
}

impl From<WireError> for ConnError {
    fn from(e: WireError) -> Self {
        ConnError::Wire(e)
    }
}

/// What happened to the messages a [`Publisher`] was asked to send.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Progress {
    /// Acknowledged by the broker (QoS 1 and 2) or fully written to the socket (QoS 0).
    pub acked: u64,
}

pub(crate) struct Publisher {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    qos: QoS,
    /// The next message: topic fixed, payload and packet id set per message.
    publish: Publish,
    /// Which packet ids await their acknowledgement.
    in_flight: Vec<bool>,
    in_flight_count: usize,
    max_in_flight: usize,
    next_pkid: u16,
    /// QoS 0 messages in `wbuf`, acknowledged once it is written.
    unwritten_qos0: u64,
    keep_alive: Duration,
    last_write: Instant,
}

impl Publisher {
    /// Connect and log in; fails on a refused login or when no CONNACK comes before
    /// `deadline`.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        client_id: &str,
        secret: &str,
        keep_alive: Duration,
        deadline: Instant,
    ) -> Result<Publisher, ConnError> {
        let stream = timeout_at(deadline, TcpStream::connect((host, port)))
            .await
            .map_err(|_| ConnError::Timeout)??;
        stream.set_nodelay(true)?;
        let mut connect = Connect::new(client_id);
        connect.keep_alive = keep_alive.as_secs().min(u64::from(u16::MAX)) as u16;
        connect.clean_session = true;
        connect.set_login(client_id, secret);
        let mut p = Publisher {
            stream,
            rbuf: BytesMut::with_capacity(4096),
            wbuf: BytesMut::with_capacity(WRITE_BATCH + 4096),
            qos: QoS::AtMostOnce,
            publish: Publish::new("", QoS::AtMostOnce, Vec::new()),
            in_flight: vec![false; usize::from(u16::MAX) + 1],
            in_flight_count: 0,
            max_in_flight: 1,
            next_pkid: 1,
            unwritten_qos0: 0,
            keep_alive,
            last_write: Instant::now(),
        };
        connect.write(&mut p.wbuf)?;
        p.stream.write_all(&p.wbuf).await?;
        p.wbuf.clear();
        let ack = timeout_at(deadline, p.read_packet())
            .await
            .map_err(|_| ConnError::Timeout)??;
        match ack {
            Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Success,
                ..
            }) => Ok(p),
            Packet::ConnAck(ConnAck { code, .. }) => Err(ConnError::Refused(code)),
            other => Err(ConnError::Unexpected(packet_name(&other))),
        }
    }

    /// Publish on `topic` with `qos`, at most `max_in_flight` unacknowledged at a time.
    pub(crate) fn configure(&mut self, topic: String, qos: QoS, max_in_flight: u16) {
        self.publish = Publish::new(topic, qos, Vec::new());
        self.qos = qos;
        self.max_in_flight = usize::from(max_in_flight.max(1));
    }

    /// Whether another message may be queued now: the write batch has room and, for QoS 1
    /// and 2, the acknowledgement window and the next packet id are free.
    pub(crate) fn has_room(&self) -> bool {
        self.wbuf.len() < WRITE_BATCH
            && (self.qos == QoS::AtMostOnce
                || (self.in_flight_count < self.max_in_flight
                    && !self.in_flight[usize::from(self.next_pkid)]))
    }

    /// Queue one publish; call only when [`Publisher::has_room`]. Gives the payload's
    /// buffer back (emptied) for the next message.
    pub(crate) fn queue(&mut self, payload: Vec<u8>) -> Result<Vec<u8>, ConnError> {
        self.publish.payload = bytes::Bytes::from(payload);
        if self.qos != QoS::AtMostOnce {
            let pkid = self.next_pkid;
            self.publish.pkid = pkid;
            self.in_flight[usize::from(pkid)] = true;
            self.in_flight_count += 1;
            self.next_pkid = if pkid == u16::MAX { 1 } else { pkid + 1 };
        } else {
            self.unwritten_qos0 += 1;
        }
        self.publish.write(&mut self.wbuf)?;
        // The only owner of the bytes, so this is the same allocation, not a copy.
        let mut buf = Vec::from(std::mem::take(&mut self.publish.payload));
        buf.clear();
        Ok(buf)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight_count
    }

    pub(crate) fn has_unwritten(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Wait until the socket can take queued bytes or has acknowledgements to read, or
    /// until `wake` (pacing) or the keep-alive is due; then do what it can without
    /// blocking. Returns what got acknowledged.
    pub(crate) async fn step(&mut self, wake: Option<Instant>) -> Result<Progress, ConnError> {
        let ping_due = self.last_write + self.keep_alive / 2;
        if self.wbuf.is_empty() && Instant::now() >= ping_due {
            PingReq.write(&mut self.wbuf)?;
        }
        let interest = if self.wbuf.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let until = wake.map_or(ping_due, |w| w.min(ping_due));
        let ready = match timeout_at(until, self.stream.ready(interest)).await {
            Ok(r) => r?,
            Err(_) => return Ok(Progress::default()),
        };
        let mut progress = Progress::default();
        if ready.is_readable() {
            match self.stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(_) => progress.acked += self.take_acks()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        if ready.is_writable() && !self.wbuf.is_empty() {
            match self.stream.try_write(&self.wbuf) {
                Ok(n) => {
                    self.wbuf.advance(n);
                    self.last_write = Instant::now();
                    if self.wbuf.is_empty() {
                        progress.acked += std::mem::take(&mut self.unwritten_qos0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(progress)
    }

    /// Send DISCONNECT and close; errors are moot at this point.
    pub(crate) async fn disconnect(mut self) {
        let _ = Disconnect.write(&mut self.wbuf);
        let _ = self.stream.write_all(&self.wbuf).await;
        let _ = self.stream.shutdown().await;
    }

    /// Decode every complete packet in the read buffer; count acknowledgements and answer
    /// PUBREC with PUBREL.
    fn take_acks(&mut self) -> Result<u64, ConnError> {
        let mut acked = 0;
        loop {
            let packet = match Packet::read(&mut self.rbuf, MAX_INCOMING) {
                Ok(p) => p,
                Err(WireError::InsufficientBytes(_)) => return Ok(acked),
                Err(e) => return Err(e.into()),
            };
            match packet {
                Packet::PubAck(a) if self.qos == QoS::AtLeastOnce => acked += self.release(a.pkid),
                Packet::PubComp(c) if self.qos == QoS::ExactlyOnce => acked += self.release(c.pkid),
                Packet::PubRec(r) => PubRel::new(r.pkid).write(&mut self.wbuf).map(drop)?,
                // PINGRESP, and acks of ids we do not hold (never counted twice).
                _ => {}
            }
        }
    }

    fn release(&mut self, pkid: u16) -> u64 {
        let slot = &mut self.in_flight[usize::from(pkid)];
        if std::mem::take(slot) {
            self.in_flight_count -= 1;
            1
        } else {
            0
        }
    }

    async fn read_packet(&mut self) -> Result<Packet, ConnError> {
        loop {
            match Packet::read(&mut self.rbuf, MAX_INCOMING) {
                Ok(p) => return Ok(p),
                Err(WireError::InsufficientBytes(_)) => {}
                Err(e) => return Err(e.into()),
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(ConnError::Closed);
            }
        }
    }
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::v4::{PubAck, PubComp, PubRec};
    use tokio::net::TcpListener;

    /// A broker that accepts one login (`dev`/`pw`), answers QoS 1 with PUBACK and QoS 2
    /// with PUBREC, then PUBCOMP once the PUBREL arrives; returns what it received.
    async fn broker(listener: TcpListener) -> (Vec<Publish>, usize) {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut rbuf = BytesMut::new();
        let mut publishes = Vec::new();
        let mut releases = 0;
        loop {
            let packet = loop {
                match Packet::read(&mut rbuf, MAX_INCOMING) {
                    Ok(p) => break Some(p),
                    Err(WireError::InsufficientBytes(_)) => {}
                    Err(e) => panic!("broker got garbage: {e:?}"),
                }
                if s.read_buf(&mut rbuf).await.unwrap_or(0) == 0 {
                    break None;
                }
            };
            let mut out = BytesMut::new();
            match packet {
                None | Some(Packet::Disconnect) => return (publishes, releases),
                Some(Packet::Connect(c)) => {
                    let ok = c.login.as_ref().is_some_and(|l| l.password == "pw");
                    let code = if ok {
                        ConnectReturnCode::Success
                    } else {
                        ConnectReturnCode::BadUserNamePassword
                    };
                    ConnAck::new(code, false).write(&mut out).unwrap();
                }
                Some(Packet::Publish(p)) => {
                    match p.qos {
                        QoS::AtLeastOnce => PubAck::new(p.pkid).write(&mut out).map(drop),
                        QoS::ExactlyOnce => PubRec::new(p.pkid).write(&mut out).map(drop),
                        QoS::AtMostOnce => Ok(()),
                    }
                    .unwrap();
                    publishes.push(p);
                }
                Some(Packet::PubRel(r)) => {
                    releases += 1;
                    PubComp::new(r.pkid).write(&mut out).unwrap();
                }
                Some(_) => {}
            }
            s.write_all(&out).await.expect("broker write");
        }
    }

    async fn publish_all(qos: QoS, n: u64) -> (u64, Vec<Publish>, usize) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(broker(listener));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut p = Publisher::connect(
            "127.0.0.1",
            port,
            "dev",
            "pw",
            Duration::from_secs(30),
            deadline,
        )
        .await
        .expect("login accepted");
        p.configure("devices/dev/telemetry".into(), qos, 8);
        let (mut queued, mut acked) = (0, 0);
        let mut payload = Vec::new();
        while acked < n {
            while queued < n && p.has_room() {
                payload.extend_from_slice(format!("{{\"seq\":{queued}}}").as_bytes());
                payload = p.queue(payload).expect("queued");
                queued += 1;
            }
            acked += p.step(Some(deadline)).await.expect("step").acked;
            assert!(Instant::now() < deadline, "acked {acked} of {n}");
        }
        assert_eq!(p.in_flight(), 0);
        p.disconnect().await;
        let (publishes, releases) = server.await.unwrap();
        (acked, publishes, releases)
    }

    #[tokio::test]
    async fn every_qos_is_acknowledged_once_and_in_order() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            // More messages than packet ids in the window of 8: ids are reused after acks.
            let (acked, publishes, releases) = publish_all(qos, 50).await;
            assert_eq!(acked, 50, "{qos:?}");
            assert_eq!(publishes.len(), 50, "{qos:?}");
            for (i, p) in publishes.iter().enumerate() {
                assert_eq!(p.topic, "devices/dev/telemetry");
                assert_eq!(p.payload, format!("{{\"seq\":{i}}}").as_bytes(), "{qos:?}");
                assert_eq!(p.pkid == 0, qos == QoS::AtMostOnce, "{qos:?}");
            }
            assert_eq!(releases, if qos == QoS::ExactlyOnce { 50 } else { 0 });
        }
    }

    #[tokio::test]
    async fn a_refused_login_is_an_error_naming_the_code() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(broker(listener));
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = Publisher::connect(
            "127.0.0.1",
            port,
            "dev",
            "wrong",
            Duration::from_secs(30),
            deadline,
        )
        .await
        .err()
        .expect("refused");
        assert!(
            matches!(
                err,
                ConnError::Refused(ConnectReturnCode::BadUserNamePassword)
            ),
            "{err}"
        );
        drop(server);
    }
}
