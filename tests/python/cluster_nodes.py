"""Three nodes, one cluster, as kafka-python sees it: keyed records produced through one
node (--bootstrap) are read by a group member bootstrapped at another (--consume-bootstrap),
each once, at the offset its send() future reported, with its key; the member commits
offsets with metadata, and a client bootstrapped at a third node (--offsets-bootstrap) reads
them back, with the admin client's OffsetFetch and with a consumer's committed(). Each node
lists the same brokers and controller (DescribeCluster).
"""

from kafka import KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from kp_common import (
    REQUEST_TIMEOUT_MS,
    Deadline,
    admin_client,
    create_topic,
    expect,
    fail,
    group_consumer,
    parse_args,
    run,
    subscribe,
    succeed,
)

PARTITIONS = 6
MESSAGES = 120


def add_arguments(parser):
    parser.add_argument("--consume-bootstrap", required=True, help="the group member's node")
    parser.add_argument("--offsets-bootstrap", required=True, help="the offsets reader's node")


def describe_cluster(bootstrap):
    """[sorted broker ids, controller id, cluster id] as one node answers DescribeCluster."""
    admin = admin_client(bootstrap, client_id="kp-cluster-describe")
    described = admin.describe_cluster()
    admin.close()
    brokers = sorted(broker["broker_id"] for broker in described["brokers"])
    return [brokers, described["controller_id"], described["cluster_id"]]


def produce_keyed(bootstrap, topic):
    """Sends key-<i>/value-<i> without a partition (kafka-python's murmur2 partitioner).

    Returns {(partition, offset): [key, value]} from the acks.
    """
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="kp-cluster-producer",
        acks="all",
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    records = [(f"key-{i}", f"value-{i}") for i in range(MESSAGES)]
    futures = [
        (key, value, producer.send(topic, key=key.encode(), value=value.encode()))
        for key, value in records
    ]
    acknowledged = {}
    for key, value, future in futures:
        metadata = future.get(timeout=REQUEST_TIMEOUT_MS / 1000)
        position = (metadata.partition, metadata.offset)
        expect(position not in acknowledged, "two acks at one position", position=position)
        acknowledged[position] = [key, value]
    producer.close(timeout=5)
    return acknowledged


def consume_all(consumer, wanted, deadline):
    """Polls until `wanted` records came; {(partition, offset): [key, value]}."""
    read = {}
    while len(read) < wanted:
        if deadline.expired():
            fail("the member did not read every record", read=len(read), wanted=wanted)
        for records in consumer.poll(timeout_ms=100).values():
            for record in records:
                position = (record.partition, record.offset)
                expect(position not in read, "a record was read twice", position=position)
                read[position] = [record.key.decode(), record.value.decode()]
    return read


def main():
    args = parse_args(__doc__, add_arguments)
    topic, group = args.topic, args.group
    nodes = [args.bootstrap, args.consume_bootstrap, args.offsets_bootstrap]
    described = [describe_cluster(bootstrap) for bootstrap in nodes]

    admin = admin_client(args.bootstrap)
    create_topic(admin, topic, PARTITIONS)
    admin.close()
    acknowledged = produce_keyed(args.bootstrap, topic)

    member = group_consumer(args.consume_bootstrap, group, "kp-cluster-member")
    subscribe(member, topic)
    read = consume_all(member, MESSAGES, Deadline(15))
    expect(
        read == acknowledged,
        "the member's records differ from the acknowledged ones",
        missing=sorted(set(acknowledged) - set(read)),
        unexpected=sorted(set(read) - set(acknowledged)),
    )
    leaders = {
        partition: member._client.cluster.leader_for_partition(TopicPartition(topic, partition))
        for partition in range(PARTITIONS)
    }

    # Commit half of each partition's records, with metadata naming the partition.
    per_partition = {p: 0 for p in range(PARTITIONS)}
    for partition, _ in read:
        per_partition[partition] += 1
    commits = {
        TopicPartition(topic, p): OffsetAndMetadata(count // 2, f"half-{p}", -1)
        for p, count in per_partition.items()
    }
    member.commit(commits)
    member.close()
    committed = {str(tp.partition): [oam.offset, oam.metadata] for tp, oam in commits.items()}

    admin = admin_client(args.offsets_bootstrap, client_id="kp-cluster-offsets-admin")
    fetched = admin.list_group_offsets(group)[group]
    admin.close()
    admin_view = {str(tp.partition): [oam.offset, oam.metadata] for tp, oam in fetched.items()}

    reader = group_consumer(args.offsets_bootstrap, group, "kp-cluster-offsets-reader")
    consumer_view = {}
    for p in range(PARTITIONS):
        oam = reader.committed(TopicPartition(topic, p), metadata=True)
        consumer_view[str(p)] = None if oam is None else [oam.offset, oam.metadata]
    reader.close()

    succeed(
        {
            "described": described,
            "produced": len(acknowledged),
            "read": len(read),
            "partitions_written": sorted({partition for partition, _ in acknowledged}),
            "leaders": {str(p): leader for p, leader in leaders.items()},
            "committed": committed,
            "admin_offsets": admin_view,
            "consumer_offsets": consumer_view,
        }
    )


if __name__ == "__main__":
    run(main)
