//! Starting and stopping the broker: load metadata from disk, start one
//! pinned glommio executor per shard, open each shard's partitions, join the
//! mesh, accept connections, and on SIGINT/SIGTERM close every log cleanly.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

use super::cluster_metadata::{ClusterMetadata, ControlledShutdownCall};
use super::connection::serve_connection;
use super::data_dir_lock::{self, DataDirLock};
use super::routing;
use super::shard::{Shard, CONTROLLER_SHARD};
use crate::cluster::node::ClusterNode;
use crate::cluster::node_identity;
use crate::config::{BrokerConfig, FlushPolicy};
use crate::metadata::catalog::Catalog;
use crate::metadata::manifest;
use crate::metadata::stray_replicas::LocalLogs;
use crate::runtime::mesh::{mesh_builder, Mesh, MeshBuilderFor};
use crate::runtime::{durable_file, memlock};

/// Connections one shard serves at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS_PER_SHARD: usize = 10_000;

/// Runs the broker until SIGINT/SIGTERM; returns when every shard stopped.
pub fn run(config: BrokerConfig) -> io::Result<()> {
    // Registered before start-up so an early signal is not lost.
    let mut signals = crate::runtime::signals::ShutdownSignals::register()?;
    let broker = start(config)?;
    let signal = signals.wait();
    tracing::info!(signal, "shutdown requested");
    broker.stop()
}

/// A broker whose shards are running.
pub struct RunningBroker {
    /// The address every shard listens on (the real port when 0 was asked).
    pub listen: SocketAddr,
    shutdown: Vec<oneshot::Sender<()>>,
    handles: Vec<glommio::ExecutorJoinHandle<io::Result<()>>>,
    /// Holds an asked-for port 0 in the SO_REUSEPORT group; never listens.
    _port_probe: Option<socket2::Socket>,
    /// Released after the shards stopped (fields drop after `stop`'s join).
    _data_dir_lock: DataDirLock,
}

impl RunningBroker {
    /// Graceful shutdown: every shard stops accepting and closes its logs.
    pub fn stop(mut self) -> io::Result<()> {
        for sender in self.shutdown.drain(..) {
            let _ = sender.send(());
        }
        join_shards(std::mem::take(&mut self.handles))
    }
}

/// Caps the default free-space reserve at a tenth of the data directory's
/// file system (`limits::default_min_free_bytes`); an explicit
/// `--min-free-bytes` is kept as given.
fn apply_default_min_free_bytes(config: &mut BrokerConfig) {
    let data_dir = &config.data_dir;
    let reserve = crate::limits::default_min_free_bytes(config.min_free_bytes, || {
        match crate::log::free_space::volume_blocks(data_dir) {
            Ok(blocks) => Some(blocks.total_bytes()),
            Err(error) => {
                tracing::warn!(dir = %data_dir.display(), %error,
                    "statvfs of the data directory failed; the free-space reserve is not sized to it");
                None
            }
        }
    });
    if reserve != config.min_free_bytes {
        tracing::info!(
            dir = %config.data_dir.display(),
            reserve_bytes = reserve,
            "the data directory's file system is small: the default free-space reserve \
             (--min-free-bytes) is a tenth of it"
        );
        config.min_free_bytes = reserve;
    }
}

/// Starts every shard and returns once all of them accept connections.
pub fn start(mut config: BrokerConfig) -> io::Result<RunningBroker> {
    std::fs::create_dir_all(&config.data_dir)?;
    // glommio's Directory::open fails on relative paths (EBADF), and the
    // default `./data` is one.
    config.data_dir = std::path::absolute(&config.data_dir)?;
    let data_dir_lock = data_dir_lock::acquire(&config.data_dir)?;
    apply_default_min_free_bytes(&mut config);
    crate::runtime::allocator::keep_buffer_memory();
    let io_memory = memlock::plan_io_memory(config.shards)?;
    let limits = crate::limits::check(crate::limits::nofile_soft_limit(), config.shards)
        .map_err(io::Error::other)?;
    // Port 0: pick the port once so every shard binds the same one.
    let port_probe = resolve_listen_port(&mut config)?;
    let topics = manifest::load_all(&config.data_dir)
        .map_err(io::Error::other)?
        .into_iter()
        .map(|topic| with_broker_defaults(topic, &config.topic_defaults))
        .collect::<io::Result<Vec<_>>>()?;
    // A single node's metadata is its manifests; a cluster node's comes
    // from the metadata quorum once shard 0 joined (`cluster_metadata`),
    // and its manifests only mark the topics its directories belong to
    // (its first image sets aside the directories it no longer hosts).
    let (catalog, local_logs) = if config.cluster.is_some() {
        let local_logs = LocalLogs::scan(&config.data_dir, &topics)?;
        (Arc::new(Catalog::default()), local_logs)
    } else {
        let identity = node_identity::load_or_create(
            &config.data_dir,
            config.node_id,
            durable_file::replace_before_executors,
        )
        .map_err(io::Error::other)?;
        let catalog = Catalog::single_node(
            Arc::from(identity.cluster_id),
            config.local_broker(),
            topics,
        );
        (Arc::new(catalog), LocalLogs::default())
    };
    // Shard 0 takes them; the executors are spawned one after another here.
    let mut local_logs = Some(local_logs);
    let listen = config.listen;
    let config = Arc::new(config);
    let builder = (config.shards > 1).then(|| mesh_builder::<Shard>(config.shards));
    let cpus = available_cpus();
    let mut handles = Vec::with_capacity(config.shards);
    let mut shutdown_senders = Vec::with_capacity(config.shards);
    let (ready_sender, ready_receiver) = std::sync::mpsc::channel::<Result<(), String>>();
    for shard_id in 0..config.shards {
        let (shutdown_sender, shutdown) = oneshot::channel();
        shutdown_senders.push(shutdown_sender);
        let config = Arc::clone(&config);
        let catalog = Arc::clone(&catalog);
        let builder = builder.clone();
        let ready = ready_sender.clone();
        let local_logs = if shard_id == 0 {
            local_logs.take()
        } else {
            None
        };
        let cpu = cpus[(config.first_cpu + shard_id) % cpus.len()];
        let spawned = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shard-{shard_id}"))
            .io_memory(io_memory)
            .spawn(move || {
                crate::log::set_open_file_budget(
                    usize::try_from(limits.segment_files_per_shard).unwrap_or(usize::MAX),
                );
                shard_main(
                    shard_id, config, catalog, local_logs, builder, shutdown, ready,
                )
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                drop(shutdown_senders);
                let _ = join_shards(handles);
                return Err(io::Error::from(error));
            }
        }
    }
    drop(ready_sender);
    // Every shard reports once it listens and (with several) joined the mesh;
    // a shard that fails drops its sender instead.
    for _ in 0..config.shards {
        let failure = match ready_receiver.recv() {
            Ok(Ok(())) => continue,
            Ok(Err(reason)) => reason,
            Err(_) => "a shard failed to start".to_string(),
        };
        drop(shutdown_senders);
        let _ = join_shards(handles);
        return Err(io::Error::other(failure));
    }
    tracing::info!(
        "corelog ready, listening on {} with {} shards (node {}, data {})",
        listen,
        config.shards,
        config.node_id,
        config.data_dir.display()
    );
    Ok(RunningBroker {
        listen,
        shutdown: shutdown_senders,
        handles,
        _port_probe: port_probe,
        _data_dir_lock: data_dir_lock,
    })
}

/// A topic loaded from its manifest, with the broker's topic defaults
/// applied to the configs it does not override.
fn with_broker_defaults(
    topic: crate::metadata::catalog::TopicMetadata,
    defaults: &std::collections::BTreeMap<String, String>,
) -> io::Result<crate::metadata::catalog::TopicMetadata> {
    let configs = crate::metadata::topic_config::TopicConfigs::from_overrides_with(
        topic.configs.overrides().clone(),
        defaults,
    )
    .map_err(io::Error::other)?;
    Ok(crate::metadata::catalog::TopicMetadata { configs, ..topic })
}

fn join_shards(handles: Vec<glommio::ExecutorJoinHandle<io::Result<()>>>) -> io::Result<()> {
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(error) => {
                first_error.get_or_insert(io::Error::from(error));
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => {
            tracing::info!("corelog stopped cleanly");
            Ok(())
        }
    }
}

async fn shard_main(
    shard_id: usize,
    config: Arc<BrokerConfig>,
    catalog: Arc<Catalog>,
    local_logs: Option<LocalLogs>,
    builder: Option<MeshBuilderFor<Shard>>,
    mut shutdown: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> io::Result<()> {
    let shard = Rc::new(Shard::new(shard_id, Arc::clone(&config), catalog));
    if config.cluster.is_none() {
        shard.open_owned_partitions().await;
    }
    // Join the mesh before anything that can fail (binding the listener): a
    // shard that returned early would leave the others waiting in the join
    // forever.
    if let Some(builder) = builder {
        let join = Mesh::join(builder, Rc::clone(&shard));
        // Not bounded by a timeout: the other shards arrive only after
        // opening (and replaying) their partitions, which takes as long as
        // the data takes.
        let mesh = join.await.map_err(|error| {
            tracing::error!(shard_id, %error, "shard could not join the other shards");
            io::Error::other(format!("shard {shard_id}: mesh join failed: {error}"))
        })?;
        shard.set_mesh(mesh);
    }
    if config.cluster.is_some() {
        // Shard 0 joins the cluster and publishes the first image (opening
        // this node's partitions); the others wait for it before they
        // accept clients.
        if shard_id == 0 {
            match ClusterNode::join(&config).await {
                Ok(node) => {
                    let metadata =
                        ClusterMetadata::start(&shard, node, local_logs.unwrap_or_default()).await;
                    shard.set_cluster(metadata);
                }
                Err(error) => {
                    tracing::error!(%error, "cannot join the cluster");
                    let _ = ready.send(Err(format!("cannot join the cluster: {error}")));
                    return Err(io::Error::other(error.to_string()));
                }
            }
        } else {
            let first_image = async {
                while shard.catalog().version == 0 {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
            };
            if let Either::Right(_) = select(Box::pin(first_image), &mut shutdown).await {
                return Ok(());
            }
        }
    }
    let listener = TcpListener::bind(config.listen).map_err(|error| {
        tracing::error!(shard_id, %error, listen = %config.listen, "cannot listen");
        io::Error::from(error)
    })?;
    let _ = ready.send(Ok(()));
    spawn_background_tasks(&shard);
    let accept = Box::pin(accept_loop(Rc::clone(&shard), listener));
    match select(accept, shutdown).await {
        Either::Left((result, _)) => {
            if let Err(error) = &result {
                tracing::error!(shard_id, %error, "accept loop failed");
            }
        }
        Either::Right(_) => tracing::debug!(shard_id, "shard stopping"),
    }
    // Leaderships move away before any shard closes its logs; shard 0 runs
    // the controlled shutdown, the others wait for it (a failed call means
    // shard 0 is gone already).
    if config.cluster.is_some() {
        let _ = routing::call(&shard, CONTROLLER_SHARD, ControlledShutdownCall).await;
    }
    shard.close_all().await;
    if let Some(cluster) = shard.cluster() {
        cluster.node.shutdown().await;
    }
    Ok(())
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) -> io::Result<()> {
    let connections = Rc::new(std::cell::Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                // EMFILE and friends: keep serving the connections we have.
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if connections.get() >= MAX_CONNECTIONS_PER_SHARD {
            tracing::warn!(
                limit = MAX_CONNECTIONS_PER_SHARD,
                "too many connections; refusing one"
            );
            drop(stream);
            continue;
        }
        connections.set(connections.get() + 1);
        let shard = Rc::clone(&shard);
        let connections = Rc::clone(&connections);
        glommio::spawn_local(async move {
            serve_connection(shard, stream).await;
            connections.set(connections.get() - 1);
        })
        .detach();
    }
}

fn spawn_background_tasks(shard: &Rc<Shard>) {
    shard.free_space.spawn_checks(Duration::from_millis(
        crate::limits::FREE_SPACE_CHECK_INTERVAL_MS,
    ));
    super::groups::timers::spawn_timer(shard);
    super::txn::timers::spawn_timers(shard);
    if let FlushPolicy::Interval(every) = shard.config.flush {
        let shard = Rc::clone(shard);
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(every).await;
                for log in shard.local_logs() {
                    if let Err(error) = log.sync().await {
                        tracing::error!(%error, "interval flush failed");
                    }
                }
            }
        })
        .detach();
    }
    let shard = Rc::clone(shard);
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(shard.config.retention_check_interval).await;
            let now = crate::runtime::clock::now_ms();
            for log in shard.local_logs() {
                if let Err(error) = log.enforce_retention(now).await {
                    tracing::error!(%error, "retention failed");
                }
            }
        }
    })
    .detach();
}

fn available_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity writes into the set we pass.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    let cpus: Vec<usize> = if rc == 0 {
        (0..libc::CPU_SETSIZE as usize)
            .filter(|cpu| unsafe { libc::CPU_ISSET(*cpu, &set) })
            .collect()
    } else {
        Vec::new()
    };
    if cpus.is_empty() {
        (0..std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1))
            .collect()
    } else {
        cpus
    }
}

/// Number of CPUs this process may run on (the default `--cores`).
pub fn default_shard_count() -> usize {
    available_cpus().len().max(1)
}

fn resolve_listen_port(config: &mut BrokerConfig) -> io::Result<Option<socket2::Socket>> {
    if config.listen.port() != 0 {
        return Ok(None);
    }
    let domain = socket2::Domain::for_address(config.listen);
    let probe = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    probe.set_reuse_port(true)?;
    probe.bind(&config.listen.into())?;
    let bound: SocketAddr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listen address is not an IP socket"))?;
    config.listen = bound;
    if config.advertised_port == 0 {
        config.advertised_port = bound.port();
    }
    Ok(Some(probe))
}
