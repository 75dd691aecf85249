//! What the nodes of a [`super::cluster::Cluster`] tell clients about the cluster: the
//! brokers and controller of a Metadata answer (librdkafka's view, one node at a time), and
//! DescribeCluster through librdkafka's admin API (`rd_kafka_DescribeCluster`, which the
//! rdkafka crate does not wrap, so it is called through rdkafka's bindings here).
//!
//! Every wait is bounded; the waits print each new answer, so a node that never converges
//! leaves a readable trail in the failing test's output.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::time::Duration;

use rdkafka::bindings as librdkafka;
use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;

use super::cluster::Cluster;
use super::{admin, metadata_consumer, poll_until};

/// Bound of one Metadata or DescribeCluster round trip (and of librdkafka's wait for the
/// controller id).
pub const VIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// What one node tells a client that bootstraps from it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// The node id of the broker that answered; -1 for the bootstrap connection, which
    /// librdkafka keeps apart from the brokers it learns from Metadata.
    pub answered_by: i32,
    /// Broker id to its advertised port.
    pub brokers: BTreeMap<i32, i32>,
    /// -1 while no controller is known.
    pub controller_id: i32,
}

/// The Metadata answer (all topics) of a client bootstrapped at `bootstrap`; `None` if no
/// broker answered in time.
pub fn cluster_view(bootstrap: &str) -> Option<ClusterView> {
    let consumer = metadata_consumer(bootstrap);
    let metadata = consumer.fetch_metadata(None, VIEW_TIMEOUT).ok()?;
    let brokers = metadata
        .brokers()
        .iter()
        .map(|broker| (broker.id(), broker.port()))
        .collect();
    // rdkafka's Metadata has no controller id; librdkafka keeps the one of the last
    // Metadata answer, which the call above just received.
    let timeout_ms = i32::try_from(VIEW_TIMEOUT.as_millis()).expect("timeout fits i32");
    // SAFETY: the pointer is the live librdkafka handle owned by `consumer`, which outlives
    // this call; rd_kafka_controllerid only reads the handle's metadata cache.
    let controller_id =
        unsafe { librdkafka::rd_kafka_controllerid(consumer.client().native_ptr(), timeout_ms) };
    Some(ClusterView {
        answered_by: metadata.orig_broker_id(),
        brokers,
        controller_id,
    })
}

/// Broker id to Kafka port of every node the harness started, running or not.
pub fn expected_brokers(cluster: &Cluster) -> BTreeMap<i32, i32> {
    cluster
        .node_ids()
        .into_iter()
        .map(|id| (id, i32::from(cluster.kafka_port(id))))
        .collect()
}

/// Polls `node_id` until its Metadata answer (from the node itself, not from a broker the
/// client learned from it) satisfies `accept`; returns that answer.
pub fn wait_for_view(
    cluster: &Cluster,
    node_id: i32,
    timeout: Duration,
    what: &str,
    mut accept: impl FnMut(&ClusterView) -> bool,
) -> ClusterView {
    let bootstrap = cluster.bootstrap(node_id);
    let mut last_view = None;
    let what = format!("node {node_id} to answer Metadata with {what}");
    poll_until(timeout, &what, || {
        let view = cluster_view(&bootstrap);
        if view != last_view {
            eprintln!("node {node_id} answers {view:?}");
        }
        last_view = view;
        last_view
            .take_if(|view| (view.answered_by == -1 || view.answered_by == node_id) && accept(view))
    })
}

/// Waits until `node_id` lists every node of the cluster at the port the harness gave it
/// and names one of them as controller. Returns that answer.
pub fn wait_for_full_view(cluster: &Cluster, node_id: i32, timeout: Duration) -> ClusterView {
    let expected = expected_brokers(cluster);
    let what = format!("brokers {expected:?} and a controller among them");
    wait_for_view(cluster, node_id, timeout, &what, |view| {
        view.brokers == expected && expected.contains_key(&view.controller_id)
    })
}

/// One broker as DescribeCluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedNode {
    pub host: String,
    pub port: u16,
}

/// A DescribeCluster answer as librdkafka hands it to an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedCluster {
    /// `None` when the answer carried a null cluster id.
    pub cluster_id: Option<String>,
    /// -1 when the answer named no controller.
    pub controller_id: i32,
    /// Broker id to its address.
    pub nodes: BTreeMap<i32, DescribedNode>,
}

/// DescribeCluster through librdkafka's admin API, from a client bootstrapped at
/// `bootstrap` (librdkafka sends it to a broker it is connected to: with one bootstrap
/// address and a fresh client, that node). `Err` carries librdkafka's error.
pub fn describe_cluster(bootstrap: &str) -> Result<DescribedCluster, String> {
    let admin = admin(bootstrap);
    let client = admin.inner().native_ptr();
    let timeout_ms = i32::try_from(VIEW_TIMEOUT.as_millis()).expect("timeout fits i32");
    // SAFETY: `client` is the live handle owned by `admin`, which outlives every call below.
    // The queue, options and event created here are destroyed exactly once before
    // returning, and nothing read from the event (node pointers, strings) is used after the
    // event is destroyed: strings are copied into owned Strings first.
    unsafe {
        let queue = librdkafka::rd_kafka_queue_new(client);
        let options = librdkafka::rd_kafka_AdminOptions_new(
            client,
            librdkafka::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
        );
        let mut error_text = [0 as std::ffi::c_char; 512];
        let set_timeout = librdkafka::rd_kafka_AdminOptions_set_request_timeout(
            options,
            timeout_ms,
            error_text.as_mut_ptr(),
            error_text.len(),
        );
        assert_eq!(
            RDKafkaErrorCode::from(set_timeout),
            RDKafkaErrorCode::NoError,
            "DescribeCluster request timeout refused: {:?}",
            CStr::from_ptr(error_text.as_ptr())
        );
        librdkafka::rd_kafka_DescribeCluster(client, options, queue);
        // The answer (or librdkafka's own timeout error) arrives within the request
        // timeout; the margin covers the client's connection set-up.
        let event = librdkafka::rd_kafka_queue_poll(queue, 2 * timeout_ms);
        let answer = if event.is_null() {
            Err(format!(
                "no DescribeCluster result within {:?}",
                2 * VIEW_TIMEOUT
            ))
        } else {
            let answer = read_describe_cluster_event(event);
            librdkafka::rd_kafka_event_destroy(event);
            answer
        };
        librdkafka::rd_kafka_AdminOptions_destroy(options);
        librdkafka::rd_kafka_queue_destroy(queue);
        answer
    }
}

/// Copies a DescribeCluster result event into owned values.
///
/// # Safety
/// `event` must be a live, not yet destroyed event from `rd_kafka_DescribeCluster`.
unsafe fn read_describe_cluster_event(
    event: *mut librdkafka::rd_kafka_event_t,
) -> Result<DescribedCluster, String> {
    let code = RDKafkaErrorCode::from(librdkafka::rd_kafka_event_error(event));
    if code != RDKafkaErrorCode::NoError {
        let text = librdkafka::rd_kafka_event_error_string(event);
        return Err(format!(
            "{code:?}: {}",
            owned_string(text).unwrap_or_default()
        ));
    }
    let result = librdkafka::rd_kafka_event_DescribeCluster_result(event);
    if result.is_null() {
        return Err("the event is not a DescribeCluster result".into());
    }
    let mut count = 0usize;
    let nodes = librdkafka::rd_kafka_DescribeCluster_result_nodes(result, &mut count);
    let nodes = (0..count)
        .map(|index| {
            let node = *nodes.add(index);
            let described = DescribedNode {
                host: owned_string(librdkafka::rd_kafka_Node_host(node)).unwrap_or_default(),
                port: librdkafka::rd_kafka_Node_port(node),
            };
            (librdkafka::rd_kafka_Node_id(node), described)
        })
        .collect();
    let controller = librdkafka::rd_kafka_DescribeCluster_result_controller(result);
    let controller_id = if controller.is_null() {
        -1
    } else {
        librdkafka::rd_kafka_Node_id(controller)
    };
    Ok(DescribedCluster {
        cluster_id: owned_string(librdkafka::rd_kafka_DescribeCluster_result_cluster_id(
            result,
        )),
        controller_id,
        nodes,
    })
}

/// # Safety
/// `text` must be null or a NUL-terminated string that stays valid during the call.
unsafe fn owned_string(text: *const std::ffi::c_char) -> Option<String> {
    (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
}
