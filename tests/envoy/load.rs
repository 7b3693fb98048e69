//! A load driver for the real-Envoy load test: a fixed mix of request kinds (valid tokens from a
//! pool, forbidden ones, rate-limited identities, expired / forged / tampered / garbage /
//! wrong-issuer / wrong-audience tokens, no token), sent by several client threads over
//! keep-alive connections (reopened every few requests so both workers get traffic), with the
//! outcome of every request recorded and checked against what its kind must get.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meshguard_tool::demo::http::{read_message, write_message, Message};

/// What a request carries, and so what it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A valid token of a pool user: 200.
    Valid,
    /// A valid token whose claims a DENY policy matches: 403.
    Forbidden,
    /// A valid token of rate-limited identity `n`: 200 until its limit, then 429.
    Limited(usize),
    /// `exp` an hour ago: 401.
    Expired,
    /// Signed by another key with the same `kid`: 401.
    Forged,
    /// A valid token with one signature character changed: 401.
    Tampered,
    /// Not a JWT: 401.
    Garbage,
    /// Signed by the right key, another issuer: 401.
    WrongIssuer,
    /// Signed by the right key, another audience: 401.
    WrongAudience,
    /// No `Authorization` header: 401.
    NoToken,
}

impl Kind {
    /// The statuses this kind may get.
    pub fn allowed(self) -> &'static [u16] {
        match self {
            Kind::Valid => &[200],
            Kind::Forbidden => &[403],
            Kind::Limited(_) => &[200, 429],
            _ => &[401],
        }
    }

    /// Name in the report (`limited` for every identity).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Valid => "valid",
            Kind::Forbidden => "forbidden",
            Kind::Limited(_) => "limited",
            Kind::Expired => "expired",
            Kind::Forged => "forged",
            Kind::Tampered => "tampered",
            Kind::Garbage => "garbage",
            Kind::WrongIssuer => "wrong_issuer",
            Kind::WrongAudience => "wrong_audience",
            Kind::NoToken => "no_token",
        }
    }
}

/// One request of the mix.
#[derive(Debug, Clone)]
pub struct Shot {
    /// What it is.
    pub kind: Kind,
    /// Path.
    pub path: String,
    /// `Authorization` value, if any.
    pub authorization: Option<String>,
}

/// What one request got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its kind.
    pub kind: Kind,
    /// The status (0 when the exchange failed).
    pub status: u16,
    /// The transport error, if any.
    pub error: Option<String>,
}

/// How long and how hard to drive.
#[derive(Debug, Clone, Copy)]
pub struct Drive {
    /// Client threads.
    pub threads: usize,
    /// Stop after this many requests (0: no count limit).
    pub max_requests: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// Requests per connection before it is reopened.
    pub per_connection: usize,
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    used: usize,
}

fn connect(addr: SocketAddr) -> Result<Conn, String> {
    let s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let writer = s.try_clone().map_err(|e| e.to_string())?;
    Ok(Conn {
        reader: BufReader::new(s),
        writer,
        used: 0,
    })
}

fn exchange(conn: &mut Conn, shot: &Shot) -> Result<Message, String> {
    let mut headers = vec![("host".to_string(), b"load.e2e.test".to_vec())];
    if let Some(a) = &shot.authorization {
        headers.push(("authorization".to_string(), a.as_bytes().to_vec()));
    }
    let req = Message {
        start: format!("GET {} HTTP/1.1", shot.path),
        headers,
        body: Vec::new(),
    };
    write_message(&mut conn.writer, &req).map_err(|e| format!("write: {e}"))?;
    conn.used += 1;
    read_message(&mut conn.reader, false)
        .map_err(|e| format!("read: {e}"))?
        .ok_or_else(|| "connection closed before a response".to_string())
}

/// Sends `mix` round-robin (request `i` is `mix[i % len]`) from `drive.threads` threads until
/// the count or the time is up; the outcome of every request sent, in no particular order.
pub fn run(addr: SocketAddr, mix: &[Shot], drive: Drive) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let deadline = Instant::now() + drive.duration;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..drive.threads)
            .map(|_| {
                let next = &next;
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut conn: Option<Conn> = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if (drive.max_requests > 0 && i >= drive.max_requests)
                            || Instant::now() >= deadline
                        {
                            break;
                        }
                        let shot = &mix[i % mix.len()];
                        if conn.as_ref().is_none_or(|c| c.used >= drive.per_connection) {
                            conn = match connect(addr) {
                                Ok(c) => Some(c),
                                Err(e) => {
                                    out.push(Outcome {
                                        kind: shot.kind,
                                        status: 0,
                                        error: Some(format!("connect: {e}")),
                                    });
                                    continue;
                                }
                            };
                        }
                        let Some(c) = conn.as_mut() else { continue };
                        match exchange(c, shot) {
                            Ok(resp) => {
                                if resp
                                    .header("connection")
                                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                                {
                                    conn = None;
                                }
                                out.push(Outcome {
                                    kind: shot.kind,
                                    status: resp.status(),
                                    error: None,
                                });
                            }
                            Err(e) => {
                                conn = None;
                                out.push(Outcome {
                                    kind: shot.kind,
                                    status: 0,
                                    error: Some(e),
                                });
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// What the run got, and every violation of the expectations.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Requests sent.
    pub sent: usize,
    /// Count by (kind name, status).
    pub by_kind: BTreeMap<(&'static str, u16), usize>,
    /// Count by status.
    pub by_status: BTreeMap<u16, usize>,
    /// Per rate-limited identity: (sent, admitted).
    pub limited: BTreeMap<usize, (usize, usize)>,
    /// Transport errors, 5xx, statuses a kind must not get, limits not exact.
    pub violations: Vec<String>,
}

/// Checks every outcome: no transport error, no 5xx, each kind only its statuses, and each
/// rate-limited identity admitted exactly `min(sent, limit)` times.
pub fn check(outcomes: &[Outcome], limit: usize) -> Verdict {
    let mut v = Verdict {
        sent: outcomes.len(),
        ..Verdict::default()
    };
    let mut bad: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes {
        *v.by_kind.entry((o.kind.name(), o.status)).or_default() += 1;
        *v.by_status.entry(o.status).or_default() += 1;
        if let Kind::Limited(n) = o.kind {
            let e = v.limited.entry(n).or_default();
            e.0 += 1;
            if o.status == 200 {
                e.1 += 1;
            }
        }
        if let Some(err) = &o.error {
            *bad.entry(format!("transport error: {err}")).or_default() += 1;
        } else if o.status >= 500 || !o.kind.allowed().contains(&o.status) {
            *bad.entry(format!("{} got {}", o.kind.name(), o.status))
                .or_default() += 1;
        }
    }
    for (what, n) in bad {
        v.violations.push(format!("{n} x {what}"));
    }
    for (id, (sent, admitted)) in &v.limited {
        if *admitted != (*sent).min(limit) {
            v.violations.push(format!(
                "limited identity {id}: {admitted} admitted of {sent} sent, limit {limit}"
            ));
        }
    }
    v
}

impl Verdict {
    /// A human-readable summary.
    pub fn summary(&self, elapsed: Duration) -> String {
        let mut s = format!(
            "{} requests in {:.1} s ({:.0}/s)\nby status: {:?}\n",
            self.sent,
            elapsed.as_secs_f64(),
            self.sent as f64 / elapsed.as_secs_f64().max(0.001),
            self.by_status
        );
        for ((kind, status), n) in &self.by_kind {
            s.push_str(&format!("  {kind:<15} {status}: {n}\n"));
        }
        for (id, (sent, admitted)) in &self.limited {
            s.push_str(&format!(
                "  limited identity {id}: sent {sent}, admitted {admitted}\n"
            ));
        }
        s.push_str(&format!("violations: {}\n", self.violations.len()));
        for e in &self.violations {
            s.push_str(&format!("  {e}\n"));
        }
        s
    }
}
