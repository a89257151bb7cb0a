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
    let allowed = if via_gateway {
        "device_id, ts, seq, metrics"
    } else {
        "ts, seq, metrics"
    };
    let unexpected = match (&item.unexpected, &item.device_id) {
        (Some(k), _) => Some(k.as_ref()),
        (None, Some(_)) if !via_gateway => Some("device_id"),
        _ => None,
    };
    if let Some(k) = unexpected {
        return Err(reject(
            RejectReason::BadShape,
            Some(id),
            format!("unexpected field `{}`; allowed: {allowed}", truncate(k, 64)),
        ));
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
        check_fields(obj, &["ts", "event", "data", "seq"], id)?;
        let ts_ms = timestamp(ctx, scalar_of(obj.get("ts")).as_ref(), id)?;
        seq(scalar_of(obj.get("seq")).as_ref(), id)?;
        let event = match obj.get("event") {
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
        if !known.contains(&event) && !vendor_name_ok(event) {
            return Err(reject(
                RejectReason::UnknownEvent,
                Some(id),
                format!(
                    "event `{}` is not defined for {} devices (known: {}; vendor events start with `{VENDOR_PREFIX}`)",
                    truncate(event, 64),
                    device.kind,
                    known.join(", ")
                ),
            ));
        }
        let data = match obj.get("data") {
            None | Some(Json::Null) => "{}".to_string(),
            Some(d @ Json::Object(_)) => d.to_string(),
            Some(other) => {
                return Err(reject(
                    RejectReason::BadShape,
                    Some(id),
                    format!("`data` must be an object, got {}", json_type(other)),
                ))
            }
        };
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

pub(super) fn decode_gateway(
    ctx: &Ctx,
    dir: &Directory,
    gateway: &str,
    payload: &[u8],
    out: &mut Decoded,
) {
    match dir.gateways.get(gateway) {
        None => {
            out.rejects.push(reject(
                RejectReason::UnknownDevice,
                Some(gateway),
                format!("gateway `{gateway}` is not in the estate registry"),
            ));
            return;
        }
        Some(g) if g.retired => {
            out.rejects.push(reject(
                RejectReason::RetiredDevice,
                Some(gateway),
                format!("gateway `{gateway}` is retired"),
            ));
            return;
        }
        Some(_) => {}
    }
    let items = match parse_message(payload, gateway).and_then(|m| match m {
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
    }) {
        Ok(i) => i,
        Err(r) => {
            out.rejects.push(r);
            return;
        }
    };
    for (i, item) in items.iter().enumerate() {
        let result = (|| {
            let device_id = match &item.device_id {
                Some(Scalar::Str(s)) => s.as_ref(),
                _ if item.not_object.is_some() => {
                    return Err(reject(
                        RejectReason::BadShape,
                        Some(gateway),
                        format!("expected an object, got {}", item.not_object.unwrap_or("?")),
                    ))
                }
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
            telemetry_entry(ctx, device, item, true)
        })();
        match result {
            Ok(r) => out.readings.push(r),
            Err(mut r) => {
                r.detail = format!("gateway `{gateway}` entry {i}: {}", r.detail);
                out.rejects.push(r)
            }
        }
    }
}
