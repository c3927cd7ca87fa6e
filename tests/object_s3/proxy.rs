//! A fault-injecting HTTP/1.1 proxy between `object_store` and moto, on std threads: each
//! request is read whole, then either answered with an injected error or forwarded to the
//! upstream server on a fresh connection, and the connection is closed after the answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the proxy does to the requests it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Answer `status` to the next `left` requests, then forward.
    First { status: u16, left: usize },
    /// Answer `status` to every UploadPart request (`partNumber=` in its query).
    UploadParts { status: u16 },
}

struct State {
    fault: Fault,
    upstream: u16,
    injected: usize,
}

#[derive(Clone)]
pub struct Proxy {
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// A proxy answering on `listener`, forwarding to nothing yet (see [`Proxy::upstream`]).
    pub fn start(listener: TcpListener) -> Self {
        let proxy = Proxy {
            state: Arc::new(Mutex::new(State {
                fault: Fault::None,
                upstream: 0,
                injected: 0,
            })),
        };
        let serving = proxy.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let proxy = serving.clone();
                std::thread::spawn(move || proxy.serve(stream));
            }
        });
        proxy
    }

    /// Forwards to the server on 127.0.0.1:`port`.
    pub fn upstream(&self, port: u16) {
        self.state.lock().unwrap().upstream = port;
    }

    /// Sets the fault and resets the count of injected errors.
    pub fn set(&self, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        state.fault = fault;
        state.injected = 0;
    }

    /// How many errors were injected since the last [`Proxy::set`].
    pub fn injected(&self) -> usize {
        self.state.lock().unwrap().injected
    }

    fn serve(&self, client: TcpStream) {
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let Some((head, body)) = read_request(&mut reader) else {
            return;
        };
        let mut client = client;
        if let Some(status) = self.fault_for(&head) {
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = client.write_all(answer.as_bytes());
            return;
        }
        let port = self.state.lock().unwrap().upstream;
        let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let head = with_connection_close(&head);
        if upstream.write_all(head.as_bytes()).is_err() || upstream.write_all(&body).is_err() {
            return;
        }
        let mut answer = Vec::new();
        let _ = upstream.read_to_end(&mut answer);
        let _ = client.write_all(&with_connection_close_bytes(&answer));
    }

    /// The status to answer `head` with instead of forwarding it, if any.
    fn fault_for(&self, head: &str) -> Option<u16> {
        let mut state = self.state.lock().unwrap();
        let request_line = head.lines().next().unwrap_or_default();
        let status = match &mut state.fault {
            Fault::None => None,
            Fault::First { left: 0, .. } => None,
            Fault::First { status, left } => {
                *left -= 1;
                Some(*status)
            }
            Fault::UploadParts { status } => {
                request_line.contains("partNumber=").then_some(*status)
            }
        };
        state.injected += usize::from(status.is_some());
        status
    }
}

/// One request: its head (request line and headers, without the blank line) and its body
/// (`Content-Length` bytes).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse::<usize>().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// `head` (without its blank line) with `Connection: close` instead of any `Connection`
/// header, and the blank line.
fn with_connection_close(head: &str) -> String {
    let mut out: String = head
        .split_inclusive("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// A whole response with `Connection: close` instead of any `Connection` header.
fn with_connection_close_bytes(answer: &[u8]) -> Vec<u8> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_string();
    let mut out = with_connection_close(&head).into_bytes();
    out.extend_from_slice(&answer[end + 4..]);
    out
}
