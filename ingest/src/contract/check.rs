//! `steward check-payload`'s view of a message: every problem at once, each with the JSON
//! path of the member at fault.
//!
//! The hub's decoder stops an entry at its first problem: it only needs to know whether
//! to store the entry, and it runs on the hot path. A vendor fixing a payload wants every
//! problem in one run. [`check`] first runs the decoder itself (its verdict is the one
//! that counts), then walks the rejected message member by member with the decoder's own
//! checks (`route`, `entries_of`, `entry_field`, `timestamp`, `seq`, `metric_entries`,
//! `metric_entry`, `event_name`, `event_data`, `gateway_member`). The rules live once, in
//! the decoder, so the two cannot drift; and should the walk find nothing where the
//! decoder refused something, the decoder's own reject is reported.

use super::*;

/// One problem of a payload, where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// JSON path of the member at fault: `$` for the message (or topic) as a whole,
    /// `$[2].metrics.co_ppm` for a metric of the third entry of a batch.
    pub path: String,
    pub reason: RejectReason,
    pub device_id: Option<String>,
    pub detail: String,
}

impl Finding {
    fn at(path: &str, r: Reject) -> Finding {
        Finding {
            path: path.to_string(),
            reason: r.reason,
            device_id: r.device_id,
            detail: r.detail,
        }
    }
}

/// What the hub would store of a message, and every problem of it.
#[derive(Debug, Default)]
pub struct Checked {
    /// The decoder's verdict, exactly as the hub reaches it.
    pub decoded: Decoded,
    /// Every problem; empty exactly when `decoded.rejects` is.
    pub findings: Vec<Finding>,
}

/// Decode a message as the hub does and list every problem of it with its JSON path.
/// Slower than [`decode`] (the payload is parsed twice more); for tools, not for ingest.
pub fn check(
    topic: &[u8],
    payload: &[u8],
    dir: &Directory,
    now_ms: i64,
    cfg: &IngestConfig,
) -> Checked {
    let decoded = decode(topic, payload, dir, now_ms, cfg);
    let mut findings = Vec::new();
    if decoded.rejects.is_empty() {
        return Checked { decoded, findings };
    }
    let ctx = Ctx { cfg, now_ms };
    match route(topic, payload.len(), dir, cfg) {
        Err(r) => findings.push(Finding::at("$", r)),
        Ok(Route::Device(device, Channel::Telemetry)) => {
            walk_telemetry(&ctx, device, payload, &mut findings)
        }
        Ok(Route::Device(device, Channel::Events)) => {
            walk_event(&ctx, device, payload, &mut findings)
        }
        Ok(Route::Gateway(id)) => walk_gateway(&ctx, dir, id, payload, &mut findings),
        Ok(Route::Device(_, Channel::Status | Channel::Commands) | Route::Nothing) => {}
    }
    if findings.is_empty() {
        // A status has one field to judge, and the rest has no members: the decoder's
        // reject says it all.
        findings.extend(decoded.rejects.iter().cloned().map(|r| Finding::at("$", r)));
    }
    Checked { decoded, findings }
}

/// `base.key`, or `base["key"]` when the key is not a plain name.
fn member(base: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{base}.{key}")
    } else {
        format!("{base}[{}]", Json::String(key.to_string()))
    }
}

/// The message's entries as parsed JSON, next to the decoder's view of them: the JSON
/// gives every member name (the decoder keeps only the first unexpected one).
fn json_entries(payload: &[u8]) -> Vec<Json> {
    match serde_json::from_slice::<Json>(payload) {
        Ok(Json::Array(items)) => items,
        Ok(one) => vec![one],
        Err(_) => Vec::new(),
    }
}

fn keys(json: Option<&Json>) -> impl Iterator<Item = &str> {
    json.and_then(Json::as_object)
        .into_iter()
        .flat_map(|o| o.keys().map(String::as_str))
}

fn walk_telemetry(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Vec<Finding>) {
    let id = &*device.id;
    let (items, many) = match parse_message(payload, id) {
        Ok(m) => {
            let many = matches!(m, MessageIn::Many(_));
            match entries_of(m, ctx, id) {
                Ok(items) => (items, many),
                Err(r) => return out.push(Finding::at("$", r)),
            }
        }
        Err(r) => return out.push(Finding::at("$", r)),
    };
    let json = json_entries(payload);
    for (i, item) in items.iter().enumerate() {
        let path = if many { format!("$[{i}]") } else { "$".into() };
        walk_entry(ctx, device, item, json.get(i), &path, false, out);
    }
}

fn walk_gateway(ctx: &Ctx, dir: &Directory, gateway: &str, payload: &[u8], out: &mut Vec<Finding>) {
    let items = match gateway_entries(ctx, dir, gateway, payload) {
        Ok(items) => items,
        Err(r) => return out.push(Finding::at("$", r)),
    };
    let json = json_entries(payload);
    for (i, item) in items.iter().enumerate() {
        let path = format!("$[{i}]");
        match gateway_member(dir, gateway, item.device_id.as_ref(), item.not_object) {
            Ok(device) => walk_entry(ctx, device, item, json.get(i), &path, true, out),
            Err(r) if item.not_object.is_some() => out.push(Finding::at(&path, r)),
            Err(r) => out.push(Finding::at(&member(&path, "device_id"), r)),
        }
    }
}

/// Every problem of one telemetry entry at `path`.
fn walk_entry(
    ctx: &Ctx,
    device: &DeviceInfo,
    item: &EntryIn,
    json: Option<&Json>,
    path: &str,
    via_gateway: bool,
    out: &mut Vec<Finding>,
) {
    let id = &*device.id;
    let before = out.len();
    if item.not_object.is_none() {
        for k in keys(json) {
            if let Err(r) = entry_field(k, via_gateway, id) {
                out.push(Finding::at(&member(path, k), r));
            }
        }
        if let Err(r) = timestamp(ctx, item.ts.as_ref(), id) {
            out.push(Finding::at(&member(path, "ts"), r));
        }
        if let Err(r) = seq(item.seq.as_ref(), id) {
            out.push(Finding::at(&member(path, "seq"), r));
        }
        let metrics_path = member(path, "metrics");
        match metric_entries(&item.metrics, id) {
            Err(r) => out.push(Finding::at(&metrics_path, r)),
            Ok(entries) => {
                let mut seen: Vec<&str> = Vec::with_capacity(entries.len());
                for (name, v) in entries {
                    match metric_entry(device, name, v, |n| seen.contains(&n)) {
                        Ok(MetricOk::Catalog(spec_name, _)) => seen.push(spec_name),
                        Ok(MetricOk::Vendor) => {}
                        Err(r) => out.push(Finding::at(&member(&metrics_path, name), r)),
                    }
                }
            }
        }
    }
    if out.len() == before {
        // Not an object, or (should the walk ever miss a rule) whatever the decoder says.
        if let Err(r) = telemetry_entry(ctx, device, item, via_gateway) {
            out.push(Finding::at(path, r));
        }
    }
}

fn walk_event(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Vec<Finding>) {
    let id = &*device.id;
    let obj = match parse_json(payload, id) {
        Ok(Json::Object(obj)) => obj,
        // Not an object: the decoder's reject (added by the caller) says so.
        Ok(_) => return,
        Err(r) => return out.push(Finding::at("$", r)),
    };
    for k in obj.keys() {
        if let Err(r) = check_field(k, EVENT_FIELDS, id) {
            out.push(Finding::at(&member("$", k), r));
        }
    }
    if let Err(r) = timestamp(ctx, scalar_of(obj.get("ts")).as_ref(), id) {
        out.push(Finding::at("$.ts", r));
    }
    if let Err(r) = seq(scalar_of(obj.get("seq")).as_ref(), id) {
        out.push(Finding::at("$.seq", r));
    }
    if let Err(r) = event_name(device, obj.get("event")) {
        out.push(Finding::at("$.event", r));
    }
    if let Err(r) = event_data(obj.get("data"), id) {
        out.push(Finding::at("$.data", r));
    }
}

#[cfg(test)]
mod tests;
