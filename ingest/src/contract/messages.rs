//! Decoding of whole messages per channel: telemetry (one entry or a batch), events,
//! status (birth and last will) and gateway batches.

use super::*;

pub(super) fn parse_message<'a>(payload: &'a [u8], device: &str) -> Result<MessageIn<'a>, Reject> {
    wire::parse(utf8(payload, device)?).map_err(|e| malformed(device, e))
}

pub(super) fn entries_of<'a>(
    msg: MessageIn<'a>,
    ctx: &Ctx,
    device: &str,
) -> Result<Vec<EntryIn<'a>>, Reject> {
    match msg {
        MessageIn::One(e) => Ok(vec![e]),
        MessageIn::Many(items) if items.is_empty() => Err(reject(
            RejectReason::BadShape,
            Some(device),
            "array is empty",
        )),
        MessageIn::Many(items) if items.len() > ctx.cfg.max_entries => Err(reject(
            RejectReason::TooManyEntries,
            Some(device),
            format!(
                "array has {} entries; the limit is {}",
                items.len(),
                ctx.cfg.max_entries
            ),
        )),
        MessageIn::Many(items) => Ok(items),
        MessageIn::Not(t) => Err(reject(
            RejectReason::BadShape,
            Some(device),
            format!("expected a JSON object or array, got {t}"),
        )),
    }
}

pub(super) fn decode_telemetry(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Decoded) {
    let id = &*device.id;
    let items = match parse_message(payload, id).and_then(|m| entries_of(m, ctx, id)) {
        Ok(i) => i,
        Err(r) => {
            out.rejects.push(r);
            return;
        }
    };
    let many = items.len() > 1;
    for (i, item) in items.iter().enumerate() {
        match telemetry_entry(ctx, device, item, false) {
            Ok(r) => out.readings.push(r),
            Err(mut r) => {
                if many {
                    r.detail = format!("entry {i}: {}", r.detail);
                }
                out.rejects.push(r)
            }
        }
    }
}

pub(super) fn telemetry_entry(
    ctx: &Ctx,
    device: &DeviceInfo,
    item: &EntryIn,
    via_gateway: bool,
) -> Result<Reading, Reject> {
    let id = &*device.id;
    if let Some(t) = item.not_object {
        return Err(reject(
            RejectReason::BadShape,
            Some(id),
            format!("expected an object, got {t}"),
        ));
    }
    if let Some(k) = &item.unexpected {
        entry_field(k, via_gateway, id)?;
    }
    if item.device_id.is_some() {
        entry_field("device_id", via_gateway, id)?;
    }
    let ts_ms = timestamp(ctx, item.ts.as_ref(), id)?;
    let seq = seq(item.seq.as_ref(), id)?;
    let (values, extras) = metrics(device, &item.metrics)?;
    Ok(Reading {
        device_id: device.id.clone(),
        compound: device.compound.clone(),
        kind: device.kind,
        ts_ms,
        seq,
        values,
        extras,
    })
}

/// Whether a telemetry entry may have member `key` (`device_id` only in a gateway's batch).
pub(super) fn entry_field(key: &str, via_gateway: bool, id: &str) -> Result<(), Reject> {
    let allowed: &[&str] = if via_gateway {
        &["device_id", "ts", "seq", "metrics"]
    } else {
        &["ts", "seq", "metrics"]
    };
    check_field(key, allowed, id)
}

/// The members an event object may have.
pub(super) const EVENT_FIELDS: &[&str] = &["ts", "event", "data", "seq"];

/// The `event` member of an event: a string naming an event of the device's kind, or a
/// vendor event.
pub(super) fn event_name<'j>(device: &DeviceInfo, v: Option<&'j Json>) -> Result<&'j str, Reject> {
    let id = &*device.id;
    let event = match v {
        Some(Json::String(s)) => s.as_str(),
        Some(other) => {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                format!("`event` must be a string, got {}", json_type(other)),
            ))
        }
        None => {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                "`event` is missing",
            ))
        }
    };
    let known = catalog::events(device.kind);
    if known.contains(&event) || vendor_name_ok(event) {
        return Ok(event);
    }
    let near = hints::nearest(event, known.iter().copied())
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    Err(reject(
        RejectReason::UnknownEvent,
        Some(id),
        format!(
            "event `{}` is not defined for {} devices (known: {}; vendor events start with `{VENDOR_PREFIX}`){near}",
            truncate(event, 64),
            device.kind,
            known.join(", ")
        ),
    ))
}

/// The `data` member of an event as JSON text: an object, or `{}` when absent or null.
pub(super) fn event_data(v: Option<&Json>, id: &str) -> Result<String, Reject> {
    match v {
        None | Some(Json::Null) => Ok("{}".to_string()),
        Some(d @ Json::Object(_)) => Ok(d.to_string()),
        Some(other) => Err(reject(
            RejectReason::BadShape,
            Some(id),
            format!("`data` must be an object, got {}", json_type(other)),
        )),
    }
}

pub(super) fn decode_event(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Decoded) {
    let id = &*device.id;
    let result = (|| {
        let json = parse_json(payload, id)?;
        let Json::Object(obj) = &json else {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                format!("expected a JSON object, got {}", json_type(&json)),
            ));
        };
        check_fields(obj, EVENT_FIELDS, id)?;
        let ts_ms = timestamp(ctx, scalar_of(obj.get("ts")).as_ref(), id)?;
        seq(scalar_of(obj.get("seq")).as_ref(), id)?;
        let event = event_name(device, obj.get("event"))?;
        let data = event_data(obj.get("data"), id)?;
        Ok(DeviceEvent {
            device_id: device.id.clone(),
            compound: device.compound.clone(),
            kind: device.kind,
            ts_ms,
            event: event.to_string(),
            data,
        })
    })();
    match result {
        Ok(e) => out.events.push(e),
        Err(r) => out.rejects.push(r),
    }
}

pub(super) fn decode_status(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Decoded) {
    let id = &*device.id;
    let bad = |detail: String| reject(RejectReason::BadStatus, Some(id), detail);
    let parse_word = |w: &str| match w {
        "online" => Some(Status::Online),
        "offline" => Some(Status::Offline),
        _ => None,
    };
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t.trim(),
        Err(_) => {
            out.rejects.push(reject(
                RejectReason::NotUtf8,
                Some(id),
                "status payload is not UTF-8",
            ));
            return;
        }
    };
    let result = if let Some(s) = parse_word(text) {
        Ok((s, ctx.now_ms))
    } else if text.starts_with('{') {
        match parse_json(payload, id) {
            Ok(Json::Object(obj)) => (|| {
                check_fields(&obj, &["status", "ts"], id)?;
                let status = obj
                    .get("status")
                    .and_then(Json::as_str)
                    .and_then(parse_word)
                    .ok_or_else(|| bad("`status` must be \"online\" or \"offline\"".into()))?;
                let ts = match obj.get("ts") {
                    None => ctx.now_ms,
                    v => timestamp(ctx, scalar_of(v).as_ref(), id)?,
                };
                Ok((status, ts))
            })(),
            Ok(_) => Err(bad(
                "status must be `online`, `offline` or a JSON object".into()
            )),
            Err(r) => Err(r),
        }
    } else {
        Err(bad(format!(
            "status `{}` is not `online` or `offline`",
            truncate(text, 64)
        )))
    };
    match result {
        Ok((status, ts_ms)) => out.statuses.push(StatusChange {
            device_id: device.id.clone(),
            compound: device.compound.clone(),
            kind: device.kind,
            ts_ms,
            status,
        }),
        Err(r) => out.rejects.push(r),
    }
}

/// The gateway's message as entries, or why the message as a whole is refused.
pub(super) fn gateway_entries<'a>(
    ctx: &Ctx,
    dir: &Directory,
    gateway: &str,
    payload: &'a [u8],
) -> Result<Vec<EntryIn<'a>>, Reject> {
    match dir.gateways.get(gateway) {
        None => {
            return Err(reject(
                RejectReason::UnknownDevice,
                Some(gateway),
                format!("gateway `{gateway}` is not in the estate registry"),
            ))
        }
        Some(g) if g.retired => {
            return Err(reject(
                RejectReason::RetiredDevice,
                Some(gateway),
                format!("gateway `{gateway}` is retired"),
            ))
        }
        Some(_) => {}
    }
    parse_message(payload, gateway).and_then(|m| match m {
        MessageIn::Many(_) => entries_of(m, ctx, gateway),
        MessageIn::One(_) => Err(reject(
            RejectReason::BadShape,
            Some(gateway),
            "gateway telemetry must be a JSON array, got an object",
        )),
        MessageIn::Not(t) => Err(reject(
            RejectReason::BadShape,
            Some(gateway),
            format!("gateway telemetry must be a JSON array, got {t}"),
        )),
    })
}

/// The device an entry of a gateway's batch is for: named by its `device_id`, in the
/// registry and registered behind this gateway. `not_object` is the entry's type when it
/// is not an object.
pub(super) fn gateway_member<'d>(
    dir: &'d Directory,
    gateway: &str,
    device_id: Option<&Scalar>,
    not_object: Option<&'static str>,
) -> Result<&'d DeviceInfo, Reject> {
    let device_id = match (device_id, not_object) {
        (_, Some(t)) => {
            return Err(reject(
                RejectReason::BadShape,
                Some(gateway),
                format!("expected an object, got {t}"),
            ))
        }
        (Some(Scalar::Str(s)), None) => s.as_ref(),
        _ => {
            return Err(reject(
                RejectReason::BadShape,
                Some(gateway),
                "`device_id` is missing or not a string",
            ))
        }
    };
    // The id becomes the reject's `device_id` symbol and is echoed in its detail:
    // anything a gateway sends there must be a registry id first.
    steward_estate::validate_id(device_id).map_err(|e| {
        reject(
            RejectReason::BadShape,
            Some(gateway),
            format!("`device_id`: {e}"),
        )
    })?;
    let device = lookup(dir, device_id)?;
    if device.gateway.as_deref() != Some(gateway) {
        return Err(reject(
            RejectReason::NotBehindGateway,
            Some(device_id),
            format!("device `{device_id}` is not registered behind gateway `{gateway}`"),
        ));
    }
    Ok(device)
}

pub(super) fn decode_gateway(
    ctx: &Ctx,
    dir: &Directory,
    gateway: &str,
    payload: &[u8],
    out: &mut Decoded,
) {
    let items = match gateway_entries(ctx, dir, gateway, payload) {
        Ok(i) => i,
        Err(r) => {
            out.rejects.push(r);
            return;
        }
    };
    for (i, item) in items.iter().enumerate() {
        let result = gateway_member(dir, gateway, item.device_id.as_ref(), item.not_object)
            .and_then(|device| telemetry_entry(ctx, device, item, true));
        match result {
            Ok(r) => out.readings.push(r),
            Err(mut r) => {
                r.detail = format!("gateway `{gateway}` entry {i}: {}", r.detail);
                out.rejects.push(r)
            }
        }
    }
}
