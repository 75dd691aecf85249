//! Network namespaces for tests that cut nodes off from each other (issue 12's network
//! partition): one namespace per node, each joined to a bridge in the root namespace by a
//! veth pair, so nodes talk to each other, and the test process talks to them, over real
//! links that the test can take down.
//!
//! ```text
//!  root namespace (the test)            namespace <prefix>-n0, -n1, ...
//!  bridge cb<pid>k<k> 10.X.Y.254/24 --- ch<pid>k<k>n<i> ==veth== cn<pid>k<k>n<i> 10.X.Y.(i+1)/24
//! ```
//!
//! Cutting node `i` sets its bridge-side veth end down: its namespace keeps its address and
//! loopback, so the node still reaches itself (and a client started inside its namespace
//! reaches it), but every packet to or from anyone else is dropped without a reset, as in a
//! real partition. Healing sets the end up again.
//!
//! Names carry the test's pid and a per-process counter, and the subnet is derived from
//! them, so parallel test processes do not collide. [`NodeNetwork`] deletes everything it
//! created when dropped, also when the test panics; whoever starts processes inside the
//! namespaces must kill them first (`super::cluster::Cluster` owns its network and drops it
//! after its nodes). Namespaces and links need root (CAP_SYS_ADMIN and CAP_NET_ADMIN);
//! without them [`NodeNetwork::create`] panics saying so instead of letting a test pass
//! vacuously.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

/// The last octet of the bridge's address in each node subnet; nodes get `1..=NODES_MAX`.
const BRIDGE_HOST: u8 = 254;
/// Nodes per network: interface names keep one digit for the node.
const NODES_MAX: usize = 9;
/// How many subnets are tried when the derived one is already in use on this host.
const SUBNET_ATTEMPTS: u32 = 64;
/// Linux's interface name limit (IFNAMSIZ 16, with the terminating NUL).
const INTERFACE_NAME_MAX: usize = 15;

/// Namespaces, veth pairs and a bridge for `nodes` nodes, removed on drop.
pub struct NodeNetwork {
    /// `10.X.Y`: node `i` is `10.X.Y.(i+1)`, the bridge `10.X.Y.254`.
    subnet: [u8; 3],
    bridge: String,
    /// Created so far, in node order: dropped even when creation stops half-way.
    nodes: Vec<NodeLink>,
    bridge_created: bool,
}

struct NodeLink {
    namespace: String,
    /// The veth end attached to the bridge, in the root namespace.
    host_end: String,
    /// The veth end inside the namespace, carrying the node's address.
    node_end: String,
    /// Whether the namespace and the veth pair exist (for cleanup).
    namespace_created: bool,
    veth_created: bool,
}

impl NodeNetwork {
    /// Creates the bridge and one connected namespace per node, every link up. Panics with
    /// the failing `ip` command and its output, and says when the cause is missing
    /// privileges.
    pub fn create(nodes: usize) -> NodeNetwork {
        assert!(
            (1..=NODES_MAX).contains(&nodes),
            "a node network has 1 to {NODES_MAX} nodes, not {nodes}"
        );
        static NETWORKS_CREATED: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let sequence = NETWORKS_CREATED.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{pid}k{sequence}");
        let mut network = NodeNetwork {
            subnet: free_subnet(pid, sequence),
            bridge: interface_name(&format!("cb{tag}")),
            nodes: Vec::with_capacity(nodes),
            bridge_created: false,
        };
        for index in 0..nodes {
            network.nodes.push(NodeLink {
                namespace: format!("corelog-{tag}-n{index}"),
                host_end: interface_name(&format!("ch{tag}n{index}")),
                node_end: interface_name(&format!("cn{tag}n{index}")),
                namespace_created: false,
                veth_created: false,
            });
        }
        if let Err(error) = network.build() {
            // Unwinding drops `network`, which removes what was created.
            panic!(
                "cannot set up the node network: {error}\nThis test cuts nodes off with \
                 `ip netns` and veth pairs: it needs root (CAP_SYS_ADMIN for namespaces, \
                 CAP_NET_ADMIN for links) and iproute2, and does not pass without them."
            );
        }
        network
    }

    /// The address node `index` listens on inside its namespace.
    pub fn address(&self, index: usize) -> Ipv4Addr {
        self.host_address(node_octet(index))
    }

    /// The bridge's address: where the test process's connections come from.
    pub fn bridge_address(&self) -> Ipv4Addr {
        self.host_address(BRIDGE_HOST)
    }

    /// The namespace node `index` runs in.
    pub fn namespace(&self, index: usize) -> &str {
        &self.node(index).namespace
    }

    /// The command line prefix that runs a program in node `index`'s namespace, in place
    /// (`ip netns exec` execs without forking).
    pub fn launcher(&self, index: usize) -> Vec<OsString> {
        ["ip", "netns", "exec", self.namespace(index)]
            .into_iter()
            .map(OsString::from)
            .collect()
    }

    /// Takes node `index`'s link to the bridge down: it loses every peer and every client
    /// outside its namespace, silently (packets are dropped, connections are not reset).
    pub fn cut_off(&self, index: usize) {
        let host_end = &self.node(index).host_end;
        ip(&["link", "set", host_end, "down"]).unwrap_or_else(|error| panic!("{error}"));
    }

    /// Brings node `index`'s link to the bridge back up.
    pub fn heal(&self, index: usize) {
        let host_end = &self.node(index).host_end;
        ip(&["link", "set", host_end, "up"]).unwrap_or_else(|error| panic!("{error}"));
    }

    /// A TCP connection to `target` opened from inside node `index`'s namespace, as a
    /// client running next to the node would open it: it works while the node is cut off.
    /// The socket stays in that namespace whichever thread uses it afterwards.
    pub fn connect_from_inside(
        &self,
        index: usize,
        target: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        let path = format!("/var/run/netns/{}", self.namespace(index));
        // setns moves only the calling thread: a short-lived thread enters the namespace,
        // opens the socket and ends, and the test's own threads stay where they are.
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    let namespace = File::open(&path)?;
                    // SAFETY: setns(2) on a descriptor we own for a network namespace; it
                    // only changes this thread's namespace, and this thread ends right after.
                    let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    TcpStream::connect_timeout(&target, timeout)
                })
                .join()
                .expect("namespace connector thread")
        })
    }

    /// Creates the bridge, then each node's namespace and link, noting each piece as it is
    /// made so that [`Drop`] removes exactly those when a step fails.
    fn build(&mut self) -> Result<(), String> {
        ip(&["netns", "add", &self.nodes[0].namespace])?;
        self.nodes[0].namespace_created = true;
        let bridge = self.bridge.clone();
        let bridge_address = format!("{}/24", self.bridge_address());
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        self.bridge_created = true;
        run_all(&[
            &["addr", "add", &bridge_address, "dev", &bridge],
            &["link", "set", &bridge, "up"],
        ])?;
        for index in 0..self.nodes.len() {
            let node_address = format!("{}/24", self.address(index));
            let node = &mut self.nodes[index];
            if !node.namespace_created {
                ip(&["netns", "add", &node.namespace])?;
                node.namespace_created = true;
            }
            let (namespace, host_end, node_end) = (&node.namespace, &node.host_end, &node.node_end);
            ip(&[
                "link", "add", host_end, "type", "veth", "peer", "name", node_end,
            ])?;
            node.veth_created = true;
            run_all(&[
                &["link", "set", host_end, "master", &bridge],
                &["link", "set", host_end, "up"],
                &["link", "set", node_end, "netns", namespace],
                &["-n", namespace, "link", "set", "lo", "up"],
                &[
                    "-n",
                    namespace,
                    "addr",
                    "add",
                    &node_address,
                    "dev",
                    node_end,
                ],
                &["-n", namespace, "link", "set", node_end, "up"],
            ])?;
        }
        Ok(())
    }

    fn node(&self, index: usize) -> &NodeLink {
        self.nodes
            .get(index)
            .unwrap_or_else(|| panic!("no node {index} in a network of {} nodes", self.nodes.len()))
    }

    fn host_address(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, host)
    }
}

impl Drop for NodeNetwork {
    /// Deletes the veth pairs (both ends go together), the namespaces and the bridge.
    /// Failures are printed, not raised: a drop during a panic must not abort.
    fn drop(&mut self) {
        let mut commands: Vec<Vec<String>> = Vec::new();
        for node in &self.nodes {
            if node.veth_created {
                commands.push(vec!["link".into(), "del".into(), node.host_end.clone()]);
            }
            if node.namespace_created {
                commands.push(vec!["netns".into(), "del".into(), node.namespace.clone()]);
            }
        }
        if self.bridge_created {
            commands.push(vec!["link".into(), "del".into(), self.bridge.clone()]);
        }
        for command in commands {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            if let Err(error) = ip(&args) {
                eprintln!("cleaning up the node network: {error}");
            }
        }
    }
}

/// Node `index`'s last address octet.
fn node_octet(index: usize) -> u8 {
    u8::try_from(index + 1).expect("few nodes")
}

/// `name`, checked against the kernel's interface name limit.
fn interface_name(name: &str) -> String {
    assert!(
        name.len() <= INTERFACE_NAME_MAX,
        "interface name {name:?} is longer than {INTERFACE_NAME_MAX} bytes"
    );
    name.to_string()
}

/// A `10.X.Y` subnet derived from the pid and sequence that no address on this host (root
/// namespace) falls in yet. X stays within 10.64.0.0 .. 10.191.255.255, away from the
/// 10.0.x.x and 10.255.x.x ranges hosts and container runtimes tend to use.
fn free_subnet(pid: u32, sequence: u32) -> [u8; 3] {
    let in_use = ip(&["-4", "-o", "addr", "show"]).unwrap_or_default();
    let mut candidate = pid.wrapping_mul(8).wrapping_add(sequence);
    for _ in 0..SUBNET_ATTEMPTS {
        let x = 64 + ((candidate >> 8) % 128) as u8;
        let y = (candidate & 0xff) as u8;
        if !in_use.contains(&format!(" 10.{x}.{y}.")) {
            return [10, x, y];
        }
        candidate = candidate.wrapping_add(1);
    }
    panic!("no free 10.X.Y.0/24 subnet near the one derived from pid {pid}");
}

/// Runs each `ip` command in order, stopping at the first failure.
fn run_all(commands: &[&[&str]]) -> Result<(), String> {
    for args in commands {
        ip(args)?;
    }
    Ok(())
}

/// `ip <args>`: its stdout, or the command and its output when it fails.
fn ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run `ip {}`: {error}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "`ip {}` failed with {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
