//! A small HTTP/1.1 server and client on std sockets, for the demo's upstream and JWKS server
//! and for the e2e tests' requests. Headers are bytes (a test may send any value a client can),
//! bodies are `Content-Length` or chunked, connections are kept alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest head (request/status line + headers) accepted.
const MAX_HEAD: usize = 256 * 1024;
/// Largest body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed request or response head plus body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The first line, without CRLF (`GET / HTTP/1.1`, `HTTP/1.1 200 OK`).
    pub start: String,
    /// Header names and values, in order, names as received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Message {
    /// All values of header `name` (case-insensitive), as text (lossy).
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// For a response: the status code.
    pub fn status(&self) -> u16 {
        self.start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// For a request: method and path.
    pub fn method_path(&self) -> (String, String) {
        let mut parts = self.start.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        (method, path)
    }
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads one message from `reader`. `Ok(None)` on a clean EOF before any byte.
/// `head_only_body` is for responses to HEAD (no body even with a Content-Length).
pub fn read_message(
    reader: &mut impl BufRead,
    head_only_body: bool,
) -> std::io::Result<Option<Message>> {
    let mut msg = Message::default();
    let mut head_bytes = 0usize;
    let mut first = true;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            if first {
                return Ok(None);
            }
            return Err(invalid("connection closed inside a message head"));
        }
        head_bytes += n;
        if head_bytes > MAX_HEAD {
            return Err(invalid("message head too large"));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        if first {
            msg.start = String::from_utf8_lossy(&line).into_owned();
            first = false;
            continue;
        }
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| invalid("header line without colon"))?;
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii().to_vec();
        msg.headers
            .push((String::from_utf8_lossy(name).trim().to_string(), value));
    }
    if head_only_body {
        return Ok(Some(msg));
    }
    let status = msg.status();
    let is_response = msg.start.starts_with("HTTP/");
    if is_response && (status == 204 || status == 304 || (100..200).contains(&status)) {
        return Ok(Some(msg));
    }
    let chunked = msg
        .header_all("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_text = size_line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers until the empty line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if msg.body.len() + size > MAX_BODY {
                return Err(invalid("body too large"));
            }
            let start = msg.body.len();
            msg.body.resize(start + size, 0);
            reader.read_exact(msg.body.get_mut(start..).unwrap_or_default())?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(len) = msg.header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid("bad content-length"))?;
        if len > MAX_BODY {
            return Err(invalid("body too large"));
        }
        msg.body.resize(len, 0);
        reader.read_exact(&mut msg.body)?;
    } else if is_response {
        // No length: the body runs to the end of the connection.
        reader.take(MAX_BODY as u64).read_to_end(&mut msg.body)?;
    }
    Ok(Some(msg))
}

/// Serialises a message with a `content-length` (any given one is replaced).
pub fn write_message(w: &mut impl Write, msg: &Message) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + msg.body.len());
    out.extend_from_slice(msg.start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (n, v) in &msg.headers {
        if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", msg.body.len()).as_bytes());
    out.extend_from_slice(&msg.body);
    w.write_all(&out)?;
    w.flush()
}

/// A response to build in a handler.
pub fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Message {
    Message {
        start: format!("HTTP/1.1 {status} {}", reason(status)),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: body.into(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// What a handler does with a request: answer it, or drop the connection without a response.
pub enum Reply {
    /// Send this response.
    Respond(Message),
    /// Close the connection (a crashed or unreachable peer, as seen by the proxy).
    Drop,
}

/// Handles one request.
pub type Handler = Arc<dyn Fn(&Message) -> Reply + Send + Sync>;

/// A threaded HTTP/1.1 server on 127.0.0.1; stops when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving on `127.0.0.1:port` (`0` picks a free port).
    pub fn start(port: u16, handler: Handler) -> std::io::Result<HttpServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let accept = std::thread::Builder::new()
            .name(format!("http-{}", addr.port()))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop_flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let handler = handler.clone();
                    let stop_conn = stop_flag.clone();
                    let _ = std::thread::Builder::new()
                        .name("http-conn".into())
                        .spawn(move || serve_connection(conn, handler, stop_conn));
                }
            })?;
        Ok(HttpServer {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(conn: TcpStream, handler: Handler, stop: Arc<AtomicBool>) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(conn);
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // Wait for the first byte with a short timeout so a stopped server releases
        // kept-alive connections.
        match reader.fill_buf() {
            Ok([]) => break,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => break,
        }
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)));
        let msg = match read_message(&mut reader, false) {
            Ok(Some(m)) => m,
            _ => break,
        };
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)));
        let close = msg
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match handler(&msg) {
            Reply::Respond(resp) => {
                if write_message(&mut writer, &resp).is_err() || close {
                    break;
                }
            }
            Reply::Drop => break,
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

/// Sends one request on a new connection to `addr` and reads the response (`Connection:
/// close` is added). `headers` are sent exactly as given, duplicates included.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Message> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut all = headers.to_vec();
    if !all.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        all.insert(0, ("host".to_string(), addr.to_string().into_bytes()));
    }
    all.push(("connection".to_string(), b"close".to_vec()));
    let req = Message {
        start: format!("{method} {path} HTTP/1.1"),
        headers: all,
        body: body.to_vec(),
    };
    let mut w = stream.try_clone()?;
    write_message(&mut w, &req)?;
    let mut reader = BufReader::new(stream);
    read_message(&mut reader, method.eq_ignore_ascii_case("HEAD"))?
        .ok_or_else(|| invalid("connection closed before a response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_duplicate_and_binary_headers() {
        let server = HttpServer::start(
            0,
            Arc::new(|req: &Message| {
                let body = format!(
                    "{} {}",
                    req.method_path().1,
                    req.header_all("x-dup").join(",")
                );
                Reply::Respond(response(201, &[("x-a", "1")], body))
            }),
        )
        .unwrap();
        let headers = vec![
            ("x-dup".to_string(), b"a".to_vec()),
            ("x-dup".to_string(), b"b".to_vec()),
            ("x-bin".to_string(), vec![0xc3, 0xa9]),
        ];
        let resp = send(
            server.addr(),
            "POST",
            "/p?q=1",
            &headers,
            b"hello",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.header("x-a").as_deref(), Some("1"));
        assert_eq!(resp.body, b"/p?q=1 a,b");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let msg = read_message(&mut &raw[..], false).unwrap().unwrap();
        assert_eq!(msg.body, b"abcde");
    }
}
