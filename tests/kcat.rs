//! Debian's kcat is built on librdkafka 2.0.2, older and stricter than the librdkafka the
//! other tests link: it must list metadata, produce and consume against corelog.
//! Skipped (with a notice) where kcat is not installed; `.ci/run` installs it.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, QUICK_BROKER_SESSIONS};
use common::{create_topic, Broker};

const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

fn kcat_installed() -> bool {
    match Command::new("kcat").arg("-V").output() {
        Ok(output) => output.status.success(),
        Err(_) => {
            // Written to the stderr handle directly: libtest captures eprintln! output of
            // passing tests, and this notice should be seen.
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: kcat is not installed; skipping the kcat interoperability test"
            );
            false
        }
    }
}

/// Runs kcat with `args`, feeding `input`, killing it (by its own pid) after KCAT_TIMEOUT.
fn run_kcat(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kcat");
    let mut stdin = child.stdin.take().expect("kcat stdin");
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
        // Dropping stdin closes it: kcat -P stops at EOF.
    });
    let stdout = read_in_thread(&mut child, true);
    let stderr = read_in_thread(&mut child, false);
    let deadline = Instant::now() + KCAT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait kcat") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).to_string();
            panic!("kcat {args:?} did not finish within {KCAT_TIMEOUT:?}; stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn read_in_thread(child: &mut Child, stdout: bool) -> thread::JoinHandle<Vec<u8>> {
    let mut stream: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().expect("kcat stdout"))
    } else {
        Box::new(child.stderr.take().expect("kcat stderr"))
    };
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes
    })
}

fn assert_success(output: &Output, what: &str, broker: &Broker) {
    assert_ran(output, what, &broker.recent_log());
}

fn assert_ran(output: &Output, what: &str, log: &str) {
    assert!(
        output.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}\n{log}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[test]
fn kcat_lists_metadata_and_round_trips_messages() {
    if !kcat_installed() {
        return;
    }
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kcat-topic", 2);

    let listing = run_kcat(&["-b", &bootstrap, "-L", "-m", "20"], b"");
    assert_success(&listing, "kcat -L", &broker);
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        text.contains(&format!("127.0.0.1:{}", broker.port())),
        "kcat -L does not show the broker address:\n{text}"
    );
    assert!(
        text.contains("topic \"kcat-topic\" with 2 partitions"),
        "kcat -L does not show the topic:\n{text}"
    );
    let stderr = String::from_utf8_lossy(&listing.stderr);
    assert!(
        !stderr.contains("underflow") && !stderr.contains("Failed to"),
        "kcat -L complained:\n{stderr}"
    );

    let lines: Vec<String> = (0..50).map(|i| format!("key-{i}:value-{i}")).collect();
    let input = lines.join("\n") + "\n";
    let produced = run_kcat(
        &[
            "-b",
            &bootstrap,
            "-P",
            "-t",
            "kcat-topic",
            "-K",
            ":",
            "-z",
            "gzip",
            "-X",
            "acks=all",
        ],
        input.as_bytes(),
    );
    assert_success(&produced, "kcat -P", &broker);

    let consumed = run_kcat(
        &[
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "kcat-topic",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k:%s\n",
        ],
        b"",
    );
    assert_success(&consumed, "kcat -C -e", &broker);
    let mut got: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut expected = lines.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "kcat round trip");
}

/// Three nodes as kcat sees them: any node lists all three brokers and a topic whose
/// partitions are led by every node; records produced through one node are read back
/// through another.
#[test]
fn kcat_sees_three_nodes_as_one_cluster() {
    if !kcat_installed() {
        return;
    }
    let cluster = Cluster::start(3, QUICK_BROKER_SESSIONS);
    let (first, second, third) = (
        cluster.bootstrap(0),
        cluster.bootstrap(1),
        cluster.bootstrap(2),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let listing = loop {
        let listing = run_kcat(&["-b", &third, "-L", "-m", "20"], b"");
        let text = String::from_utf8_lossy(&listing.stdout).to_string();
        if listing.status.success() && text.contains(" 3 brokers:") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "kcat -L never listed 3 brokers:\n{text}"
        );
        thread::sleep(Duration::from_millis(200));
    };
    for node in 0..3 {
        assert!(
            listing.contains(&format!("127.0.0.1:{}", cluster.kafka_port(node))),
            "kcat -L does not show node {node}:\n{listing}"
        );
    }
    assert!(
        listing.contains("(controller)"),
        "no controller:\n{listing}"
    );

    create_topic(&first, "kcat-cluster", 6);
    let deadline = Instant::now() + Duration::from_secs(20);
    let topic = loop {
        let described = run_kcat(&["-b", &third, "-L", "-t", "kcat-cluster", "-m", "20"], b"");
        let text = String::from_utf8_lossy(&described.stdout).to_string();
        let led_by_all = (0..3).all(|node| text.contains(&format!("leader {node},")));
        if text.contains("with 6 partitions") && led_by_all {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not led by every node:\n{text}"
        );
        thread::sleep(Duration::from_millis(200));
    };
    assert!(
        !topic.contains("leader -1"),
        "a partition without leader:\n{topic}"
    );

    let lines: Vec<String> = (0..60).map(|i| format!("key-{i}:value-{i}")).collect();
    let input = lines.join("\n") + "\n";
    let produced = run_kcat(
        &[
            "-b",
            &first,
            "-P",
            "-t",
            "kcat-cluster",
            "-K",
            ":",
            "-X",
            "acks=all",
        ],
        input.as_bytes(),
    );
    assert_ran(&produced, "kcat -P through node 0", &cluster.recent_log(0));
    let consumed = run_kcat(
        &[
            "-b",
            &second,
            "-C",
            "-t",
            "kcat-cluster",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k:%s\n",
        ],
        b"",
    );
    assert_ran(&consumed, "kcat -C through node 1", &cluster.recent_log(1));
    let mut got: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut expected = lines;
    got.sort();
    expected.sort();
    assert_eq!(
        got, expected,
        "records produced through node 0, read through node 1"
    );
}
