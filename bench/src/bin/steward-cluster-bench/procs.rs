//! CPU accounting from /proc: per component (a process tree), per thread, whole machine.

use super::*;

/// The processes of each component: CPU is counted over each root and its descendants
/// (utime + stime of the live ones, plus cutime + cstime of what they reaped).
pub(crate) struct Components {
    pub(crate) names: Vec<String>,
    roots: Vec<Vec<u32>>,
    /// Count the root's descendants (false for this process: the JVMs, PostgreSQL and the
    /// nodes are its children, counted as their own components).
    tree: Vec<bool>,
}

impl Components {
    pub(crate) fn of(bed: &ClusterBed) -> Result<Components> {
        let mut names = Vec::new();
        let mut roots = Vec::new();
        let mut tree = Vec::new();
        names.push("Kafka (3 broker JVMs)".to_string());
        roots.push(
            (0..bed.kafka.nodes())
                .filter_map(|i| bed.kafka.pid(i))
                .collect(),
        );
        let pm = std::fs::read_to_string(bed.postgres.dir().join("data/postmaster.pid"))
            .context("reading postmaster.pid")?;
        let pm: u32 = pm.lines().next().unwrap_or("").trim().parse()?;
        names.push("PostgreSQL (postmaster + backends)".to_string());
        roots.push(vec![pm]);
        names.push("QuestDB (JVM)".to_string());
        roots.push(vec![find_by_cmdline(
            &bed.questdb.root().display().to_string(),
        )
        .context("QuestDB's java process not found")?]);
        for (i, f) in bed.frontends.iter().enumerate() {
            if let Some(f) = f {
                names.push(format!("front end {i} (steward)"));
                roots.push(vec![f.pid()]);
            }
        }
        for (i, w) in bed.workers.iter().enumerate() {
            if let Some(w) = w {
                names.push(format!("worker {i} (steward: rules + storage writer)"));
                roots.push(vec![w.pid()]);
            }
        }
        tree.resize(names.len(), true);
        names.push("load generator + probe + this bench (device-sim, one process)".to_string());
        roots.push(vec![std::process::id()]);
        tree.push(false);
        Ok(Components { names, roots, tree })
    }

    pub(crate) fn pids(&self) -> Vec<(String, Vec<u32>)> {
        self.names
            .iter()
            .cloned()
            .zip(self.roots.iter().cloned())
            .collect()
    }

    /// Clock ticks of each component now.
    pub(crate) fn sample(&self) -> Vec<f64> {
        let procs = all_procs();
        let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in &procs {
            kids.entry(p.ppid).or_default().push(*pid);
        }
        self.roots
            .iter()
            .zip(&self.tree)
            .map(|(roots, tree)| {
                let mut sum = 0u64;
                let mut stack = roots.clone();
                while let Some(pid) = stack.pop() {
                    if let Some(p) = procs.get(&pid) {
                        sum += if *tree { p.ticks } else { p.own };
                    }
                    if let Some(k) = kids.get(&pid).filter(|_| *tree) {
                        stack.extend(k);
                    }
                }
                sum as f64
            })
            .collect()
    }

    /// Clock ticks of every thread of each component's processes, by component and
    /// thread name (digits folded, so `rdk:broker3` and `rdk:broker7` add up).
    pub(crate) fn threads(&self) -> HashMap<(usize, String), f64> {
        let procs = all_procs();
        let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in &procs {
            kids.entry(p.ppid).or_default().push(*pid);
        }
        let mut out = HashMap::new();
        for (c, (roots, tree)) in self.roots.iter().zip(&self.tree).enumerate() {
            let mut stack = roots.clone();
            while let Some(pid) = stack.pop() {
                for (name, t) in thread_ticks(pid) {
                    *out.entry((c, name)).or_insert(0.0) += t;
                }
                if let Some(k) = kids.get(&pid).filter(|_| *tree) {
                    stack.extend(k);
                }
            }
        }
        out
    }
}

pub(crate) struct Proc {
    ppid: u32,
    /// utime + stime + cutime + cstime
    ticks: u64,
    /// utime + stime
    own: u64,
}

/// (thread name with digits folded to `#`, utime + stime) of each thread of `pid`.
pub(crate) fn thread_ticks(pid: u32) -> Vec<(String, f64)> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
            continue;
        };
        let mut name = String::new();
        for ch in s[open + 1..close].chars() {
            if ch.is_ascii_digit() {
                if !name.ends_with('#') {
                    name.push('#');
                }
            } else {
                name.push(ch);
            }
        }
        let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        v.push((name, n(11) + n(12)));
    }
    v
}

pub(crate) fn proc_stat(pid: u32) -> Option<Proc> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Proc {
        ppid: n(1)? as u32,
        ticks: n(11)? + n(12)? + n(13)? + n(14)?,
        own: n(11)? + n(12)?,
    })
}

pub(crate) fn all_procs() -> HashMap<u32, Proc> {
    let mut m = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some(p) = proc_stat(pid) {
                    m.insert(pid, p);
                }
            }
        }
    }
    m
}

pub(crate) fn find_by_cmdline(needle: &str) -> Option<u32> {
    let rd = std::fs::read_dir("/proc").ok()?;
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("java") && cmd.contains(needle) {
            return Some(pid);
        }
    }
    None
}

/// (busy, total) clock ticks of the whole machine, from /proc/stat.
pub(crate) fn machine_ticks() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub(crate) fn print_machine() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {cores} cores ({model}); load average before the runs: {}",
        load.trim()
    );
}
