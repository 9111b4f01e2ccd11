//! The exporter stand-in really asks ZooKeeper: a loopback server answering the four-letter words
//! plays ZooKeeper, and the stand-in binary is scraped over HTTP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves canned `mntr` answers and records every word asked.
fn fake_zookeeper() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let mut s = s.unwrap();
            let mut word = [0u8; 4];
            s.read_exact(&mut word).unwrap();
            let word = String::from_utf8_lossy(&word).into_owned();
            let answer = match word.as_str() {
                "mntr" => "zk_version\t3.8.0\nzk_server_state\tobserver\nzk_peer_state\tobserving - broadcast\nzk_znode_count\t5\n",
                "srst" => "Server stats reset.\n",
                _ => "",
            };
            log.lock().unwrap().push(word);
            s.write_all(answer.as_bytes()).unwrap();
        }
    });
    (port, asked)
}

fn scrape(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            return out;
        }
        assert!(Instant::now() < deadline, "the exporter never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn exporter(port: u16, zk_port: u16) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_zk-exporter-standin"))
            .arg(format!("-bind-addr=127.0.0.1:{port}"))
            .arg("-metrics-path=/metrics")
            .arg(format!("-zookeeper=127.0.0.1:{zk_port}"))
            .arg("-reset-on-scrape=true")
            .spawn()
            .unwrap(),
    )
}

#[test]
fn serves_what_mntr_says_and_resets_on_scrape() {
    let (zk, asked) = fake_zookeeper();
    let port = free_port();
    let _e = exporter(port, zk);
    let body = scrape(port);
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    assert!(body.contains("\nzk_up 1\n"), "{body}");
    assert!(body.contains("\nzk_znode_count 5\n"), "{body}");
    assert!(
        body.contains("zk_peer_state{value=\"observing - broadcast\"} 1"),
        "{body}"
    );
    assert_eq!(*asked.lock().unwrap(), ["mntr", "srst"]);
}

#[test]
fn reports_down_when_zookeeper_does_not_answer() {
    let port = free_port();
    let _e = exporter(port, free_port());
    let body = scrape(port);
    assert!(body.contains("\nzk_up 0\n"), "{body}");
}

/// The stand-in for ZooKeeper's own Prometheus provider (sandbox image, `Metrics::Builtin`) serves
/// the lines upstream's own test expects (apache/zookeeper
/// `zookeeper-metrics-providers/zookeeper-prometheus-metrics/src/test/java/org/apache/zookeeper/metrics/prometheus/PrometheusMetricsProviderTest.java`:
/// `testCounters` "# TYPE cc counter" / "cc 10.0", a negative increment ignored; `testGauge`
/// "gg 78.0"; `testBasicSummary` "cc_count 2.0", "cc_sum 20.0", `cc{quantile="0.5",} 10.0`, here
/// under the name `ss` because one registry cannot hold a counter and a summary both named `cc`;
/// `testAdvancedSummary` adds the 0.9 and 0.99 quantiles), over HTTP at `/metrics` only, with
/// simpleclient 0.9.0's content type (`TextFormat.CONTENT_TYPE_004`).
#[test]
fn the_provider_standin_serves_what_upstreams_tests_expect() {
    let classes = std::env::temp_dir().join(format!("provider-standin-{}", std::process::id()));
    sandbox::harness::image_build::compile_provider(
        std::path::Path::new("/usr/share/java/zookeeper.jar"),
        &classes,
    )
    .unwrap();
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(format!(
            "{}:/usr/share/java/zookeeper.jar",
            classes.display()
        ))
        .arg("org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut port)
            .unwrap();
    }
    let _child = Killed(child);
    let port: u16 = port.trim().parse().expect("the stand-in prints its port");
    let ask = |request: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let got = ask("GET /metrics HTTP/1.0\r\n\r\n");
    let (head, body) = got.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    for line in [
        "# TYPE cc counter",
        "cc 10.0",
        "# TYPE gg gauge",
        "gg 78.0",
        "# TYPE ss summary",
        "ss_count 2.0",
        "ss_sum 20.0",
        "ss{quantile=\"0.5\",} 10.0",
        "aa{quantile=\"0.9\",} 10.0",
        "aa{quantile=\"0.99\",} 10.0",
        "cset{key=\"x\",} 3.0",
    ] {
        assert!(body.lines().any(|l| l == line), "{line:?} missing:\n{body}");
    }
    assert!(
        !body.contains("zk_"),
        "the provider's names are bare:\n{body}"
    );
    assert!(ask("GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(ask("TRACE /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 405"));
    let _ = std::fs::remove_dir_all(&classes);
}
