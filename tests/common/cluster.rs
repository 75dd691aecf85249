//! Multi-node harness: several `corelog serve` processes on loopback that form one metadata
//! quorum, each with `--cores 1`, its own Kafka port, controller port and data directory.
//!
//! Ports are chosen once, up front, and kept across restarts: the voters find each other
//! through the fixed `--controller-quorum-voters` list, and clients that only know a node's
//! old address reconnect by themselves. Every node is spawned before the harness waits on
//! any, because a node's Kafka listener may only open once the quorum has a leader. Nodes
//! are spread over this process's CPUs with `taskset` when it can pin here, so their shards
//! (pinned by glommio) do not all land on the same core.
//!
//! Like [`super::Broker`], every wait is bounded, the last lines of every node's log are
//! printed (prefixed with the node id) when a test panics, and dropping the cluster kills
//! exactly the processes it started, by pid, and reaps them.
//!
//! Nodes are addressed by node id. Voters have ids `0..voters`; a broker-only node added
//! with [`Cluster::add_broker_only`] keeps the id it was given.
//!
//! [`Cluster::start_in_namespaces`] runs each voter in its own network namespace
//! (`super::netns`), listening on that namespace's address instead of 127.0.0.1 and
//! reached over a bridge, so [`Cluster::cut_off`] can partition one node from everyone
//! (peers and the test's clients) while it keeps running.
//!
//! ```ignore
//! let mut cluster = Cluster::start(3, &[]);
//! cluster.kill9(1);
//! let bootstrap = cluster.bootstrap_all(); // nodes 0 and 2
//! cluster.restart(1);
//! cluster.pause(2); // SIGSTOP: alive, silent
//! cluster.resume(2);
//!
//! let mut cluster = Cluster::start_in_namespaces(3, &[]);
//! cluster.cut_off(0); // its link down: it runs on, alone
//! cluster.heal(0);
//! ```

use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use super::netns::NodeNetwork;
use super::process::{LogTail, ServeProcess};
use super::SHUTDOWN_TIMEOUT;

/// How long a node may take from spawn to its Kafka "listening on" line. Longer than a
/// single broker's: the listener waits for a quorum leader, so it covers an election among
/// voters that start at different times on a loaded test host.
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many log lines are kept per node for printing when a test fails, unless
/// `CORELOG_TEST_NODE_LOG_LINES` says otherwise.
const NODE_LOG_LINES_KEPT: usize = 300;

fn node_log_lines_kept() -> usize {
    std::env::var("CORELOG_TEST_NODE_LOG_LINES")
        .ok()
        .and_then(|lines| lines.parse().ok())
        .filter(|lines| *lines > 0)
        .unwrap_or(NODE_LOG_LINES_KEPT)
}
/// `serve` flags for tests that kill or restart nodes: heartbeats every 500 ms and fencing
/// after 3 s without one (Kafka's broker.heartbeat.interval.ms and
/// broker.session.timeout.ms default to 2 s and 9 s), so a killed node is fenced, and a
/// restarted one registers again, within seconds.
pub const QUICK_BROKER_SESSIONS: &[&str] = &[
    "--broker-session-timeout-ms",
    "3000",
    "--broker-heartbeat-interval-ms",
    "500",
];

/// A running (or partly stopped) cluster of `corelog serve` nodes.
pub struct Cluster {
    nodes: Vec<ClusterNode>,
    /// `id@<host>:port,...`, the same for every node and every restart.
    quorum_voters: String,
    extra_args: Vec<String>,
    /// The namespaces nodes run in ([`Cluster::start_in_namespaces`]). Declared after
    /// `nodes` and dropped after [`Drop::drop`] killed every node: a namespace is only
    /// gone once nothing runs in it.
    network: Option<NodeNetwork>,
}

struct ClusterNode {
    node_id: i32,
    /// The address it listens on: 127.0.0.1, or its namespace's address.
    host: Ipv4Addr,
    /// Runs `corelog serve` in the node's namespace (`ip netns exec <ns>`); empty on the
    /// host's own network.
    launcher: Vec<OsString>,
    kafka_port: u16,
    /// `Some` for a voter, `None` for a broker-only node.
    controller_port: Option<u16>,
    /// The CPU given to `taskset -c`, if nodes are pinned on this host.
    cpu: Option<usize>,
    data_dir: tempfile::TempDir,
    process: Option<ServeProcess>,
    /// Stopped with SIGSTOP by [`Cluster::pause`] and not resumed yet.
    paused: bool,
    log: LogTail,
}

impl Cluster {
    /// Starts `voters` voter nodes (ids `0..voters`) with `extra_args` appended to each
    /// node's `corelog serve` command line, and waits until every one listens for Kafka
    /// clients.
    pub fn start(voters: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_on(voters, extra_args, None)
    }

    /// [`Cluster::start`] with each voter in a network namespace of its own, joined to the
    /// others and to this process by a bridge (`super::netns`): node `i` listens on the
    /// namespace's address, and [`Cluster::cut_off`] takes its link down. Needs root
    /// (CAP_SYS_ADMIN, CAP_NET_ADMIN) and panics saying so without it. The namespaces,
    /// links and bridge are removed when the cluster is dropped, after its nodes are killed.
    pub fn start_in_namespaces(voters: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_on(voters, extra_args, Some(NodeNetwork::create(voters)))
    }

    fn start_on(voters: usize, extra_args: &[&str], network: Option<NodeNetwork>) -> Cluster {
        assert!(voters >= 1, "a cluster needs at least one voter");
        // Ports free on loopback here are free in a fresh namespace too.
        let ports = free_loopback_ports(2 * voters);
        let (kafka_ports, controller_ports) = ports.split_at(voters);
        let host = |index: usize| {
            network
                .as_ref()
                .map_or(Ipv4Addr::LOCALHOST, |network| network.address(index))
        };
        let quorum_voters = controller_ports
            .iter()
            .enumerate()
            .map(|(node_id, port)| format!("{node_id}@{}:{port}", host(node_id)))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::with_capacity(voters);
        for (index, (kafka_port, controller_port)) in
            kafka_ports.iter().zip(controller_ports).enumerate()
        {
            let node_id = i32::try_from(index).expect("node id fits i32");
            let mut node = ClusterNode::new(node_id, *kafka_port, Some(*controller_port), index);
            if let Some(network) = &network {
                node.host = network.address(index);
                node.launcher = network.launcher(index);
            }
            nodes.push(node);
        }
        let mut cluster = Cluster {
            nodes,
            quorum_voters,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            network,
        };
        // All first: no voter's listener opens before a majority of voters runs.
        for index in 0..voters {
            cluster.spawn_at(index);
        }
        for index in 0..voters {
            cluster.wait_ready_at(index);
        }
        cluster
    }

    /// Starts a node that is not in the voter list (no `--controller-listen`): a
    /// broker-only node that registers with the quorum's leader. Waits until it listens.
    pub fn add_broker_only(&mut self, node_id: i32) {
        assert!(
            self.network.is_none(),
            "broker-only nodes run on loopback, which nodes in namespaces cannot reach"
        );
        assert!(
            self.nodes.iter().all(|node| node.node_id != node_id),
            "node {node_id} is already in this cluster"
        );
        let kafka_port = free_loopback_ports(1)[0];
        let index = self.nodes.len();
        self.nodes
            .push(ClusterNode::new(node_id, kafka_port, None, index));
        self.spawn_at(index);
        self.wait_ready_at(index);
    }

    /// Every node's id, voters first, in the order they were added.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|node| node.node_id).collect()
    }

    /// The `--controller-quorum-voters` value every node was given.
    pub fn quorum_voters(&self) -> &str {
        &self.quorum_voters
    }

    /// `<host>:<kafka port>` of the node: 127.0.0.1, or its namespace's address.
    pub fn bootstrap(&self, node_id: i32) -> String {
        let node = self.node(node_id);
        format!("{}:{}", node.host, node.kafka_port)
    }

    pub fn kafka_port(&self, node_id: i32) -> u16 {
        self.node(node_id).kafka_port
    }

    /// The node's controller (quorum) port; `None` for a broker-only node.
    pub fn controller_port(&self, node_id: i32) -> Option<u16> {
        self.node(node_id).controller_port
    }

    pub fn data_dir(&self, node_id: i32) -> &Path {
        self.node(node_id).data_dir.path()
    }

    /// Comma-separated bootstrap addresses of the nodes whose process is running (a node
    /// stopped by [`Cluster::pause`] counts: its process exists).
    pub fn bootstrap_all(&mut self) -> String {
        let mut running = Vec::with_capacity(self.nodes.len());
        for node_id in self.node_ids() {
            if self.is_running(node_id) {
                running.push(self.bootstrap(node_id));
            }
        }
        running.join(",")
    }

    /// Whether the node's process was started and has not exited (by itself or through
    /// [`Cluster::kill9`] / [`Cluster::stop_graceful`]).
    pub fn is_running(&mut self, node_id: i32) -> bool {
        self.node_mut(node_id)
            .process
            .as_mut()
            .is_some_and(|process| process.try_wait().is_none())
    }

    /// Panics (the test's panic prints every node's log) if the node's process exited.
    pub fn assert_alive(&mut self, node_id: i32) {
        let process = self.node_mut(node_id).process.as_mut();
        let process = process.unwrap_or_else(|| panic!("node {node_id} is not running"));
        if let Some(status) = process.try_wait() {
            panic!("node {node_id} exited unexpectedly with {status}");
        }
    }

    /// SIGSTOP: the node hangs as a whole (a long GC pause, a stuck disk, a VM stall). Its
    /// sockets stay open and the kernel keeps accepting connections and queueing requests
    /// for it, but it answers nothing and sends no heartbeat until [`Cluster::resume`].
    pub fn pause(&mut self, node_id: i32) {
        let node = self.node_mut(node_id);
        assert!(!node.paused, "node {node_id} is already paused");
        node.process
            .as_mut()
            .unwrap_or_else(|| panic!("node {node_id} is not running"))
            .signal(libc::SIGSTOP);
        node.paused = true;
        node.log.push("---- paused (SIGSTOP) ----".into());
    }

    /// SIGCONT for a node stopped by [`Cluster::pause`]: it goes on where it stopped.
    pub fn resume(&mut self, node_id: i32) {
        let node = self.node_mut(node_id);
        assert!(node.paused, "node {node_id} is not paused");
        node.log.push("---- resumed (SIGCONT) ----".into());
        node.process
            .as_mut()
            .unwrap_or_else(|| panic!("node {node_id} is not running"))
            .signal(libc::SIGCONT);
        node.paused = false;
    }

    /// Takes the node's network link down ([`Cluster::start_in_namespaces`] only): it runs
    /// on but reaches no peer and no client outside its namespace, and nobody reaches it;
    /// packets are dropped, no connection is reset. [`Cluster::heal`] reconnects it.
    pub fn cut_off(&mut self, node_id: i32) {
        let index = self.index(node_id);
        self.network_of(node_id).cut_off(index);
        self.nodes[index]
            .log
            .push("---- cut off (link down) ----".into());
    }

    /// Brings the link of a node cut off by [`Cluster::cut_off`] back up.
    pub fn heal(&mut self, node_id: i32) {
        let index = self.index(node_id);
        self.nodes[index]
            .log
            .push("---- healed (link up) ----".into());
        self.network_of(node_id).heal(index);
    }

    /// A connection to the node's Kafka listener opened from inside its namespace, as a
    /// client on the node's own host would open it: it works while the node is cut off.
    pub fn connect_from_inside(&self, node_id: i32, timeout: Duration) -> io::Result<TcpStream> {
        let index = self.index(node_id);
        let node = &self.nodes[index];
        let listener = SocketAddr::new(IpAddr::V4(node.host), node.kafka_port);
        self.network_of(node_id)
            .connect_from_inside(index, listener, timeout)
    }

    /// SIGKILL: a crash, nothing gets flushed. Returns once the process is reaped.
    pub fn kill9(&mut self, node_id: i32) {
        let node = self.node_mut(node_id);
        // SIGKILL ends a stopped process too.
        node.paused = false;
        let process = node.process.take();
        process
            .unwrap_or_else(|| panic!("node {node_id} is not running"))
            .kill9();
        node.log.push("---- kill -9 ----".into());
    }

    /// SIGTERM, then waits (bounded) for a clean exit with status 0.
    pub fn stop_graceful(&mut self, node_id: i32) -> ExitStatus {
        if self.node(node_id).paused {
            // A stopped process would leave SIGTERM pending until the timeout.
            self.resume(node_id);
        }
        let node = self.node_mut(node_id);
        let process = node.process.take();
        let process = process.unwrap_or_else(|| panic!("node {node_id} is not running"));
        let status = process.stop_with_signal(libc::SIGTERM, SHUTDOWN_TIMEOUT);
        node.log.push("---- stopped (SIGTERM) ----".into());
        let Some(status) = status else {
            panic!("node {node_id} did not exit within {SHUTDOWN_TIMEOUT:?} after SIGTERM");
        };
        assert!(
            status.success(),
            "node {node_id} exited with {status} after SIGTERM, expected success"
        );
        status
    }

    /// Starts the node again with the same ports, data directory and arguments, and waits
    /// until it listens. A node that is still running is stopped gracefully first; after
    /// [`Cluster::kill9`] this is a crash restart.
    pub fn restart(&mut self, node_id: i32) {
        let index = self.index(node_id);
        if self.nodes[index].process.is_some() {
            self.stop_graceful(node_id);
        }
        self.nodes[index].log.push("---- restart ----".into());
        self.spawn_at(index);
        self.wait_ready_at(index);
    }

    /// The node's last log lines, for failure messages.
    pub fn recent_log(&self, node_id: i32) -> String {
        self.node(node_id).render_log()
    }

    /// Whether any kept log line of the node contains `needle`.
    pub fn log_contains(&self, node_id: i32, needle: &str) -> bool {
        self.node(node_id).log.contains(needle)
    }

    /// Panics, printing the node's log, if a node's kept log shows a Rust panic: a shard
    /// that died while the test went on would otherwise pass unnoticed.
    pub fn assert_no_node_panicked(&self) {
        for node in &self.nodes {
            assert!(
                !node.log.contains("panicked"),
                "node {} panicked:\n{}",
                node.node_id,
                node.render_log()
            );
        }
    }

    fn spawn_at(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        assert!(node.process.is_none(), "node {} is running", node.node_id);
        let mut args: Vec<OsString> = vec![
            "--node-id".into(),
            node.node_id.to_string().into(),
            "--listen".into(),
            format!("{}:{}", node.host, node.kafka_port).into(),
        ];
        if let Some(controller_port) = node.controller_port {
            args.push("--controller-listen".into());
            args.push(format!("{}:{controller_port}", node.host).into());
        }
        args.extend([
            "--controller-quorum-voters".into(),
            self.quorum_voters.clone().into(),
            "--data-dir".into(),
            node.data_dir.path().into(),
            "--cores".into(),
            "1".into(),
        ]);
        args.extend(self.extra_args.iter().map(OsString::from));
        node.process = Some(ServeProcess::spawn_through(
            &node.launcher,
            &args,
            &[],
            node.cpu,
            &node.log,
        ));
    }

    fn wait_ready_at(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let (node_id, host, port) = (node.node_id, node.host, node.kafka_port);
        let process = node.process.as_mut().expect("node was spawned");
        if let Err(status) = process.wait_listening(Some(port), CLUSTER_READY_TIMEOUT) {
            panic!(
                "node {node_id} did not log 'listening on {host}:{port}' within \
                 {CLUSTER_READY_TIMEOUT:?} (exit status: {status:?}); extra args: {:?}; \
                 every node's log follows",
                self.extra_args
            );
        }
    }

    fn index(&self, node_id: i32) -> usize {
        self.nodes
            .iter()
            .position(|node| node.node_id == node_id)
            .unwrap_or_else(|| {
                panic!(
                    "no node {node_id} in this cluster (nodes {:?})",
                    self.node_ids()
                )
            })
    }

    fn network_of(&self, node_id: i32) -> &NodeNetwork {
        self.network.as_ref().unwrap_or_else(|| {
            panic!("node {node_id} is on the host's network: start the cluster in namespaces")
        })
    }

    fn node(&self, node_id: i32) -> &ClusterNode {
        &self.nodes[self.index(node_id)]
    }

    fn node_mut(&mut self, node_id: i32) -> &mut ClusterNode {
        let index = self.index(node_id);
        &mut self.nodes[index]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            for node in &self.nodes {
                eprintln!("{}", node.render_log());
            }
        }
        // Dropping a process sends SIGKILL to exactly the process this harness started
        // and reaps it. The data directories go with the nodes, after their process, and
        // the network namespaces (a field dropped after this) once nothing runs in them.
        for node in &mut self.nodes {
            node.process.take();
        }
    }
}

impl ClusterNode {
    /// A node not started yet; `index` (its position in the cluster) picks its CPU.
    fn new(node_id: i32, kafka_port: u16, controller_port: Option<u16>, index: usize) -> Self {
        let data_dir = tempfile::Builder::new()
            .prefix(&format!("corelog-cluster-node{node_id}-"))
            .tempdir()
            .expect("create temporary data dir");
        ClusterNode {
            node_id,
            host: Ipv4Addr::LOCALHOST,
            launcher: Vec::new(),
            kafka_port,
            controller_port,
            cpu: pinning_cpus().map(|cpus| cpus[index % cpus.len()]),
            data_dir,
            process: None,
            paused: false,
            log: LogTail::new(node_log_lines_kept()),
        }
    }

    fn render_log(&self) -> String {
        let whose = format!("node {}", self.node_id);
        self.log
            .render(&whose, &format!("[node {}] ", self.node_id))
    }
}

/// `count` distinct loopback ports that were free a moment ago: each is bound to port 0 and
/// all are held until every one is chosen, so none repeats. Another process could take one
/// before the node binds it; on a test host that is rare enough.
fn free_loopback_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address").port())
        .collect()
}

/// The CPUs nodes are spread over with `taskset -c`, or `None` when `taskset` is missing or
/// cannot pin here (then nodes share whatever CPUs this process has).
fn pinning_cpus() -> Option<&'static [usize]> {
    static CPUS: OnceLock<Option<Vec<usize>>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let cpus = allowed_cpus();
        let first = *cpus.first()?;
        let pins = Command::new("taskset")
            .arg("-c")
            .arg(first.to_string())
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        pins.then_some(cpus)
    })
    .as_deref()
}

/// The CPUs this test process may run on (its affinity mask), which every child inherits.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads the set sched_getaffinity filled, within CPU_SETSIZE.
        .filter(|cpu| unsafe { libc::CPU_ISSET(*cpu, &set) })
        .collect()
}
