// One message catalogue for every page: English and Simplified Chinese. `t(key, ...args)`
// fills `{0}`, `{1}`... A key missing in a language falls back to English, then to the key.

const MESSAGES = {
  en: {
    "app.title": "Steward", "nav.estate": "Estate", "nav.tickets": "Open tickets", "nav.rating": "SLA rating",
    "nav.crew": "Crew board", "nav.vendor": "My devices", "live.on": "live", "live.off": "offline",
    "logout": "Log out", "login.title": "Log in", "login.token": "API token", "login.go": "Log in",
    "login.refused": "The token was refused.", "login.unreachable": "Cannot reach the hub: {0}",
    "signed.as": "{0} ({1})", "role.admin": "admin", "role.manager": "manager", "role.crew": "crew", "role.vendor": "vendor",
    "error.page": "Could not load this page: {0}", "error.refresh": "Refresh failed at {0}: {1}. Showing the last data.",
    "error.nopage": "No such page: {0}", "error.role": "This page is not for the {0} role.",
    "estate": "Estate", "street": "Street {0}", "community": "Community {0}", "compound": "Compound", "station": "Station",
    "devices": "Devices", "status": "Status", "tickets.active": "Active tickets", "updated": "updated {0}",
    "n.online": "{0} online", "n.offline": "{0} offline", "n.silent": "{0} silent", "n.unknown": "{0} unknown",
    "compound.title": "{0}", "tile.tickets": "tickets", "tile.ticket": "#{0} {1}",
    "sev.alarm": "ALARM", "sev.warning": "warning", "sev.notice": "ticket", "sev.ok": "ok",
    "yes": "yes", "no": "no", "history": "History", "metric": "Metric", "range": "Range", "from": "From", "to": "To",
    "range.custom": "custom", "range.hours": "{0} h", "range.days": "{0} days", "chart.empty": "No data for {0} in this range.",
    "chart.band": "band: min to max per bucket", "show": "Show",
    "tickets.title": "Open tickets", "tickets.device": "Tickets of {0}", "col.id": "Id", "col.prio": "Prio", "col.title": "Title",
    "col.device": "Device", "col.compound": "Compound", "col.station": "Station", "col.state": "State",
    "col.opened": "Opened", "col.sla": "SLA", "col.action": "Action", "col.where": "Where",
    "due.acknowledge": "acknowledge", "due.on_site": "on site", "due.resolve": "resolve", "overdue": "overdue {0}",
    "ticket.title": "Ticket #{0}", "ticket.where": "Location", "ticket.device": "Device", "ticket.priority": "Priority",
    "ticket.state": "State", "ticket.escalation": "Escalation level", "ticket.escalation.v": "level {0} ({1})",
    "esc.1": "the responsible station", "esc.n": "escalated {0} times",
    "ticket.condition": "Condition", "cond.active": "still present (last seen {0})", "cond.cleared": "cleared at {0}",
    "ticket.event": "Raised by", "ticket.event.v": "event \u201c{0}\u201d from the device",
    "ticket.readings": "Readings when raised", "ticket.readings.before": "Last readings before the event",
    "ticket.now": "Device now", "ticket.opened": "Opened", "ticket.occurrences": "Occurrences", "ticket.audit": "Audit trail",
    "audit.when": "When", "audit.who": "Who", "audit.what": "What", "audit.note": "Note", "ticket.chart": "History of {0}",
    "crew.boards": "Crew boards", "crew.title": "Crew board: {0}", "crew.actor": "Acting as", "crew.actor.need": "Enter who is acting.",
    "crew.readonly": "Read only: the {0} role cannot move tickets.", "crew.note": "from the crew board",
    "step.acknowledged": "Acknowledge", "step.dispatched": "Dispatch", "step.on_site": "On site", "step.resolved": "Resolve",
    "step.closed": "Close", "step.on_hold": "Hold",
    "rating.title": "Service rating", "rating.scope": "Scope", "rating.month": "Month", "rating.station": "station {0}",
    "rating.compound": "compound {0}", "rating.notrated": "not rated", "rating.provisional": "provisional: {0} pending",
    "rating.notrated.why": "Not rated: this month has nothing to rate yet (no ticket was opened, all were cancelled, or every ticket still waits for its first acknowledge, on-site or resolve verdict).",
    "rating.pending": "{0} ticket(s) pending ({1} P1): their deadlines have not passed and they are not done, so the figures below leave them out until they are decided. The score can still fall.",
    "rating.nopending": "No tickets pending: every ticket of the month is in the figures.",
    "rating.tickets": "Tickets", "rating.cancelled": "Cancelled", "rating.active": "Still needing work", "rating.score": "Score",
    "rating.ack": "Acknowledged within SLA", "rating.onsite": "On site within SLA", "rating.resolved": "Resolved within SLA",
    "rating.mean_ack": "Mean time to acknowledge (min)", "rating.mean_resolve": "Mean time to resolve (min)",
    "rating.repeat": "Repeat failures",
    "vendor.title": "Devices of {0}", "vendor.kind": "Kind", "vendor.where": "Where", "vendor.last_seen": "Last seen",
    "vendor.rejects": "Rejected payloads", "vendor.reason": "Reason", "vendor.detail": "Detail", "vendor.when": "When",
    "vendor.topic": "Topic", "vendor.norejects": "No rejected payloads.", "never": "never",
    "lang": "Language",
    // People (docs/people.md).
    "nav.people": "People", "role.captain": "captain", "people.oncall": "On call now", "people.nobody": "nobody",
    "people.head": "Station head", "people.name": "Name", "people.crew": "Crew", "people.contact": "Contact",
    "people.timezone": "Rota times are in {0}.", "people.title": "People", "people.id": "Id", "people.roles": "Crews and roles",
    "people.channels": "Channels", "people.captain": "Captain of",
  },
  "zh-CN": {
    "app.title": "Steward", "nav.estate": "\u8f96\u533a", "nav.tickets": "\u672a\u7ed3\u5de5\u5355", "nav.rating": "\u670d\u52a1\u8bc4\u7ea7",
    "nav.crew": "\u73ed\u7ec4\u770b\u677f", "nav.vendor": "\u6211\u7684\u8bbe\u5907", "live.on": "\u5b9e\u65f6", "live.off": "\u79bb\u7ebf",
    "logout": "\u9000\u51fa", "login.title": "\u767b\u5f55", "login.token": "API \u4ee4\u724c", "login.go": "\u767b\u5f55",
    "login.refused": "\u4ee4\u724c\u88ab\u62d2\u7edd\u3002", "login.unreachable": "\u65e0\u6cd5\u8fde\u63a5\u5e73\u53f0\uff1a{0}",
    "role.admin": "\u7ba1\u7406\u5458", "role.manager": "\u7269\u4e1a\u7ecf\u7406", "role.crew": "\u7ef4\u4fee\u73ed\u7ec4", "role.vendor": "\u5382\u5546",
    "error.page": "\u9875\u9762\u52a0\u8f7d\u5931\u8d25\uff1a{0}", "error.refresh": "{0} \u5237\u65b0\u5931\u8d25\uff1a{1}\u3002\u663e\u793a\u7684\u662f\u4e0a\u6b21\u7684\u6570\u636e\u3002",
    "error.nopage": "\u6ca1\u6709\u8fd9\u4e2a\u9875\u9762\uff1a{0}", "error.role": "{0} \u89d2\u8272\u4e0d\u80fd\u4f7f\u7528\u6b64\u9875\u9762\u3002",
    "estate": "\u8f96\u533a", "street": "\u8857\u9053 {0}", "community": "\u793e\u533a {0}", "compound": "\u5c0f\u533a", "station": "\u7ef4\u4fee\u7ad9",
    "devices": "\u8bbe\u5907", "status": "\u72b6\u6001", "tickets.active": "\u672a\u7ed3\u5de5\u5355", "updated": "\u66f4\u65b0\u4e8e {0}",
    "n.online": "{0} \u5728\u7ebf", "n.offline": "{0} \u79bb\u7ebf", "n.silent": "{0} \u5931\u8054", "n.unknown": "{0} \u672a\u77e5",
    "tile.tickets": "\u5de5\u5355", "sev.alarm": "\u62a5\u8b66", "sev.warning": "\u9884\u8b66", "sev.notice": "\u5de5\u5355", "sev.ok": "\u6b63\u5e38",
    "yes": "\u662f", "no": "\u5426", "history": "\u5386\u53f2", "metric": "\u6307\u6807", "range": "\u65f6\u95f4\u8303\u56f4", "from": "\u4ece", "to": "\u5230",
    "range.custom": "\u81ea\u5b9a\u4e49", "range.hours": "{0} \u5c0f\u65f6", "range.days": "{0} \u5929", "chart.empty": "\u6b64\u8303\u56f4\u5185\u6ca1\u6709 {0} \u7684\u6570\u636e\u3002",
    "chart.band": "\u9634\u5f71\uff1a\u6bcf\u6bb5\u6700\u5c0f\u5230\u6700\u5927\u503c", "show": "\u663e\u793a",
    "tickets.title": "\u672a\u7ed3\u5de5\u5355", "tickets.device": "{0} \u7684\u5de5\u5355", "col.id": "\u7f16\u53f7", "col.prio": "\u7ea7\u522b", "col.title": "\u6807\u9898",
    "col.device": "\u8bbe\u5907", "col.compound": "\u5c0f\u533a", "col.station": "\u7ef4\u4fee\u7ad9", "col.state": "\u72b6\u6001",
    "col.opened": "\u5f00\u5355\u65f6\u95f4", "col.sla": "\u65f6\u9650", "col.action": "\u64cd\u4f5c", "col.where": "\u4f4d\u7f6e",
    "due.acknowledge": "\u54cd\u5e94", "due.on_site": "\u5230\u573a", "due.resolve": "\u4fee\u590d", "overdue": "\u8d85\u65f6 {0}",
    "ticket.title": "\u5de5\u5355 #{0}", "ticket.where": "\u4f4d\u7f6e", "ticket.device": "\u8bbe\u5907", "ticket.priority": "\u7ea7\u522b",
    "ticket.state": "\u72b6\u6001", "ticket.escalation": "\u5347\u7ea7", "ticket.escalation.v": "\u7b2c {0} \u7ea7\uff08{1}\uff09",
    "esc.1": "\u8d23\u4efb\u7ef4\u4fee\u7ad9", "esc.n": "\u5df2\u5347\u7ea7 {0} \u6b21",
    "ticket.condition": "\u6545\u969c\u72b6\u6001", "cond.active": "\u4ecd\u5b58\u5728\uff08\u6700\u8fd1 {0}\uff09", "cond.cleared": "\u5df2\u4e8e {0} \u6d88\u9664",
    "ticket.event": "\u89e6\u53d1", "ticket.event.v": "\u8bbe\u5907\u4e8b\u4ef6\u201c{0}\u201d", "ticket.readings": "\u5f00\u5355\u65f6\u8bfb\u6570",
    "ticket.readings.before": "\u4e8b\u4ef6\u524d\u6700\u540e\u8bfb\u6570", "ticket.now": "\u8bbe\u5907\u5f53\u524d", "ticket.opened": "\u5f00\u5355",
    "ticket.occurrences": "\u53d1\u751f\u6b21\u6570", "ticket.audit": "\u5904\u7406\u8bb0\u5f55", "audit.when": "\u65f6\u95f4", "audit.who": "\u4eba\u5458",
    "audit.what": "\u52a8\u4f5c", "audit.note": "\u5907\u6ce8", "ticket.chart": "{0} \u5386\u53f2",
    "crew.boards": "\u73ed\u7ec4\u770b\u677f", "crew.title": "\u73ed\u7ec4\u770b\u677f\uff1a{0}", "crew.actor": "\u64cd\u4f5c\u4eba", "crew.actor.need": "\u8bf7\u586b\u5199\u64cd\u4f5c\u4eba\u3002",
    "crew.readonly": "\u53ea\u8bfb\uff1a{0} \u89d2\u8272\u4e0d\u80fd\u5904\u7406\u5de5\u5355\u3002",
    "step.acknowledged": "\u54cd\u5e94", "step.dispatched": "\u6d3e\u5de5", "step.on_site": "\u5230\u573a", "step.resolved": "\u4fee\u590d",
    "step.closed": "\u5173\u95ed", "step.on_hold": "\u6302\u8d77",
    "rating.title": "\u670d\u52a1\u8bc4\u7ea7", "rating.scope": "\u8303\u56f4", "rating.month": "\u6708\u4efd", "rating.station": "\u7ef4\u4fee\u7ad9 {0}",
    "rating.compound": "\u5c0f\u533a {0}", "rating.notrated": "\u672a\u8bc4\u7ea7", "rating.provisional": "\u6682\u5b9a\uff1a{0} \u5f20\u5f85\u5b9a",
    "rating.notrated.why": "\u672a\u8bc4\u7ea7\uff1a\u672c\u6708\u5c1a\u65e0\u53ef\u8bc4\u7684\u5de5\u5355\uff08\u6ca1\u6709\u5f00\u5355\u3001\u5168\u90e8\u5df2\u53d6\u6d88\uff0c\u6216\u6240\u6709\u5de5\u5355\u90fd\u8fd8\u5728\u7b49\u5f85\u7b2c\u4e00\u6b21\u786e\u8ba4\u3001\u5230\u573a\u6216\u4fee\u590d\u7684\u7ed3\u679c\uff09\u3002",
    "rating.pending": "{0} \u5f20\u5de5\u5355\u5f85\u5b9a\uff08\u5176\u4e2d P1 {1} \u5f20\uff09\uff1a\u672a\u5b8c\u6210\u4e14\u672a\u5230\u671f\u9650\uff0c\u4e0b\u5217\u6570\u5b57\u6682\u4e0d\u8ba1\u5165\uff0c\u5f97\u5206\u4ecd\u53ef\u80fd\u4e0b\u964d\u3002",
    "rating.nopending": "\u6ca1\u6709\u5f85\u5b9a\u5de5\u5355\uff1a\u672c\u6708\u6240\u6709\u5de5\u5355\u5747\u5df2\u8ba1\u5165\u3002",
    "rating.tickets": "\u5de5\u5355", "rating.cancelled": "\u5df2\u53d6\u6d88", "rating.active": "\u4ecd\u9700\u5904\u7406", "rating.score": "\u5f97\u5206",
    "rating.ack": "\u6309\u65f6\u54cd\u5e94", "rating.onsite": "\u6309\u65f6\u5230\u573a", "rating.resolved": "\u6309\u65f6\u4fee\u590d",
    "rating.mean_ack": "\u5e73\u5747\u54cd\u5e94\u65f6\u95f4\uff08\u5206\u949f\uff09", "rating.mean_resolve": "\u5e73\u5747\u4fee\u590d\u65f6\u95f4\uff08\u5206\u949f\uff09",
    "rating.repeat": "\u91cd\u590d\u6545\u969c",
    "vendor.title": "{0} \u7684\u8bbe\u5907", "vendor.kind": "\u7c7b\u578b", "vendor.where": "\u4f4d\u7f6e", "vendor.last_seen": "\u6700\u8fd1\u4e0a\u62a5",
    "vendor.rejects": "\u88ab\u62d2\u6d88\u606f", "vendor.reason": "\u539f\u56e0", "vendor.detail": "\u8be6\u60c5", "vendor.when": "\u65f6\u95f4",
    "vendor.topic": "\u4e3b\u9898", "vendor.norejects": "\u6ca1\u6709\u88ab\u62d2\u6d88\u606f\u3002", "never": "\u4ece\u672a",
    "lang": "\u8bed\u8a00",
    // People (docs/people.md).
    "nav.people": "\u4eba\u5458", "role.captain": "\u697c\u6808\u957f", "people.oncall": "\u5f53\u524d\u503c\u73ed", "people.nobody": "\u65e0\u4eba\u503c\u73ed",
    "people.head": "\u7ad9\u957f", "people.name": "\u59d3\u540d", "people.crew": "\u73ed\u7ec4", "people.contact": "\u8054\u7cfb\u65b9\u5f0f",
    "people.timezone": "\u6392\u73ed\u65f6\u95f4\u4e3a {0} \u65f6\u533a\u3002", "people.title": "\u4eba\u5458", "people.id": "\u7f16\u53f7", "people.roles": "\u73ed\u7ec4\u4e0e\u804c\u8d23",
    "people.channels": "\u901a\u77e5\u6e20\u9053", "people.captain": "\u697c\u6808\u957f",
  },
};

export const LANGS = { en: "English", "zh-CN": "\u4e2d\u6587" };
const LANG_KEY = "steward.lang";

export function lang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && MESSAGES[saved]) return saved;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function setLang(l) {
  localStorage.setItem(LANG_KEY, l);
}

export function t(key, ...args) {
  const text = MESSAGES[lang()][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ""));
}
