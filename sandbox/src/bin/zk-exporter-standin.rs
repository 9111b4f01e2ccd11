//! A stand-in for `josdotso/zookeeper-exporter` (which cannot be pulled here), built into the
//! sandbox's exporter image. Same flags; on every scrape it really sends `mntr` (and `srst` with
//! `-reset-on-scrape=true`) to its ZooKeeper and serves the result in the Prometheus text format.
//! Std only, so the image needs nothing but glibc.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

struct Flags {
    bind: String,
    path: String,
    zookeeper: String,
    reset: bool,
}

fn flags() -> Flags {
    let mut f = Flags {
        bind: ":9141".into(),
        path: "/metrics".into(),
        zookeeper: "localhost:2181".into(),
        reset: false,
    };
    for arg in std::env::args().skip(1) {
        let (k, v) = arg
            .trim_start_matches('-')
            .split_once('=')
            .unwrap_or((arg.as_str(), ""));
        match k {
            "bind-addr" => f.bind = v.into(),
            "metrics-path" => f.path = v.into(),
            "zookeeper" => f.zookeeper = v.into(),
            "reset-on-scrape" => f.reset = v == "true",
            "log-level" => {}
            other => eprintln!("ignoring unknown flag {other}"),
        }
    }
    if f.bind.starts_with(':') {
        f.bind = format!("0.0.0.0{}", f.bind);
    }
    f
}

fn four_letter_word(zk: &str, word: &str) -> std::io::Result<String> {
    let addr = zk
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn metrics(f: &Flags) -> String {
    let mntr = match four_letter_word(&f.zookeeper, "mntr") {
        Ok(m) if m.contains("zk_version") => m,
        Ok(m) => return format!("# mntr refused: {}\nzk_up 0\n", m.trim().replace('\n', " ")),
        Err(e) => return format!("# mntr failed: {e}\nzk_up 0\n"),
    };
    let mut out = String::from("zk_up 1\n");
    for line in mntr.lines() {
        let Some((key, value)) = line.split_once('\t') else {
            continue;
        };
        if value.parse::<f64>().is_ok() {
            out.push_str(&format!("{key} {value}\n"));
        } else {
            let label = value.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!("{key}{{value=\"{label}\"}} 1\n"));
        }
    }
    if f.reset {
        let _ = four_letter_word(&f.zookeeper, "srst");
    }
    out
}

fn main() {
    let f = flags();
    let listener = TcpListener::bind(&f.bind).unwrap_or_else(|e| panic!("binding {}: {e}", f.bind));
    eprintln!("serving {} on {} for {}", f.path, f.bind, f.zookeeper);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut request = String::new();
        if BufReader::new(&stream).read_line(&mut request).is_err() {
            continue;
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let (status, body) = if path == f.path {
            ("200 OK", metrics(&f))
        } else {
            ("404 Not Found", "not found\n".into())
        };
        let _ = write!(
            stream,
            "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
