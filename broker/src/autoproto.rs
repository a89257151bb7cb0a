//! One listener for MQTT 3.1.1 and MQTT 5, as Mosquitto and EMQX serve them.
//!
//! rumqttd gives each listener one codec (`V4` or `V5`) for all its connections, and each
//! codec refuses the other's CONNECT (`InvalidProtocolLevel`). [`AutoProto`] is cloned
//! once per accepted connection before its first packet (like every `Protocol` rumqttd
//! is given): it waits until the whole first packet is buffered, reads the protocol level
//! of that CONNECT (4 = 3.1.1, 5 = 5) and uses that codec for the connection's whole
//! life. Anything else (a first packet that is not CONNECT, level 3) goes to the 3.1.1
//! codec, which refuses it exactly as the 3.1.1-only listener did.
//!
//! rumqttd's `remote` link and router do not depend on the codec type, so nothing else
//! changes; the `Guarded` wrapper (guard.rs) sits on top of this one.

use bytes::BytesMut;
use rumqttd::protocol::v4::{self, V4};
use rumqttd::protocol::v5::V5;
use rumqttd::protocol::{Error, Packet, Protocol};

/// The codec a connection speaks, chosen from its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V311,
    V5,
}

/// A codec that picks MQTT 3.1.1 or 5 per connection from the CONNECT's protocol level.
#[derive(Debug, Clone, Default)]
pub(crate) struct AutoProto {
    /// Unset until the first packet is complete; a fresh clone per connection.
    version: Option<Version>,
}

impl AutoProto {
    #[cfg(test)]
    pub(crate) fn version(&self) -> Option<Version> {
        self.version
    }
}

/// The protocol level byte of a CONNECT frame (fixed header, remaining length, protocol
/// name, level), or `None` when `frame` is not a CONNECT.
fn connect_level(frame: &[u8]) -> Option<u8> {
    const CONNECT: u8 = 1;
    if frame.first()? >> 4 != CONNECT {
        return None;
    }
    // Remaining length: 1 to 4 bytes, the high bit says another follows.
    let mut i = 1;
    loop {
        let b = *frame.get(i)?;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return None;
        }
    }
    let name_len = u16::from_be_bytes([*frame.get(i)?, *frame.get(i + 1)?]) as usize;
    frame.get(i + 2 + name_len).copied()
}

impl Protocol for AutoProto {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        let version = match self.version {
            Some(v) => v,
            None => {
                // The fixed header is the same in both versions: frame (and refuse an
                // oversize or incomplete packet) as either codec would, then look inside.
                v4::check(stream.iter(), max_size)?;
                let v = match connect_level(stream) {
                    Some(5) => Version::V5,
                    _ => Version::V311,
                };
                self.version = Some(v);
                v
            }
        };
        match version {
            Version::V311 => V4.read_mut(stream, max_size),
            Version::V5 => V5.read_mut(stream, max_size),
        }
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        match self.version {
            Some(Version::V5) => V5.write(packet, write),
            // Nothing is written before CONNECT is read; 3.1.1 is the safe default.
            Some(Version::V311) | None => V4.write(packet, write),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttd::protocol::{Connect, Login};

    fn connect() -> Packet {
        Packet::Connect(
            Connect {
                keep_alive: 30,
                client_id: "lift-1".into(),
                clean_session: true,
            },
            None,
            None,
            None,
            Some(Login {
                username: "lift-1".into(),
                password: "secret".into(),
            }),
        )
    }

    fn encoded(version: Version) -> BytesMut {
        let mut buf = BytesMut::new();
        match version {
            Version::V311 => V4.write(connect(), &mut buf),
            Version::V5 => V5.write(connect(), &mut buf),
        }
        .expect("encode connect");
        buf
    }

    #[test]
    fn each_version_is_read_with_its_own_codec() {
        for version in [Version::V311, Version::V5] {
            let mut proto = AutoProto::default();
            let mut buf = encoded(version);
            let packet = proto.read_mut(&mut buf, 1024).expect("connect decodes");
            assert!(matches!(packet, Packet::Connect(..)), "{version:?}");
            assert_eq!(proto.version(), Some(version));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_partial_connect_waits_for_the_rest() {
        let full = encoded(Version::V5);
        let mut proto = AutoProto::default();
        for cut in [1, 2, 5, full.len() - 1] {
            let mut part = BytesMut::from(&full[..cut]);
            assert!(matches!(
                proto.read_mut(&mut part, 1024),
                Err(Error::InsufficientBytes(_))
            ));
            assert_eq!(proto.version(), None, "no choice before the level is read");
        }
        let mut all = full.clone();
        assert!(proto.read_mut(&mut all, 1024).is_ok());
        assert_eq!(proto.version(), Some(Version::V5));
    }

    #[test]
    fn anything_else_goes_to_the_311_codec() {
        // PINGREQ first: not a CONNECT.
        let mut proto = AutoProto::default();
        let mut buf = BytesMut::from(&[0xC0u8, 0x00][..]);
        let _ = proto.read_mut(&mut buf, 1024);
        assert_eq!(proto.version(), Some(Version::V311));
        assert_eq!(connect_level(&[0x10, 0x80, 0x80, 0x80, 0x80, 0x01]), None);
        assert_eq!(connect_level(&[]), None);
    }
}
