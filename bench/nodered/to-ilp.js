// Function node body: one device-contract reading -> one ILP row for QuestDB.
// Kept in its own file so it can be read and linted; start.sh inlines it into the flow.
const parts = msg.topic.split("/");
const id = parts[1];
if (parts.length !== 3 || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
    node.warn("bad topic: " + msg.topic);
    return null;
}
const r = msg.payload;
if (r === null || typeof r !== "object" || Array.isArray(r)) {
    node.warn(id + ": payload is not a JSON object");
    return null;
}
if (!Number.isSafeInteger(r.ts) || r.ts <= 0) {
    node.warn(id + ": ts is not integer milliseconds");
    return null;
}
const m = r.metrics;
if (m === null || typeof m !== "object" || Array.isArray(m)) {
    node.warn(id + ": metrics is not an object");
    return null;
}
let fields = "";
for (const k in m) {
    if (!/^[A-Za-z0-9_]{1,64}$/.test(k)) continue;
    const v = m[k];
    let f;
    if (typeof v === "number") {
        if (!Number.isFinite(v)) continue;
        f = String(v);
    } else if (typeof v === "boolean") {
        f = v ? "t" : "f";
    } else if (typeof v === "string") {
        f = '"' + v.replace(/[\\"\n\r]/g, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\" + c)) + '"';
    } else {
        continue;
    }
    fields += (fields ? "," : "") + k + "=" + f;
}
if (Number.isSafeInteger(r.seq) && r.seq >= 0) {
    fields += (fields ? "," : "") + "seq=" + r.seq + "i";
}
if (!fields) {
    node.warn(id + ": no usable metric");
    return null;
}
// ts is in ms; ILP's default precision is ns. Appending digits avoids float rounding.
msg.payload = "nodered_telemetry,device_id=" + id + " " + fields + " " + r.ts + "000000";
return msg;
