"""kafka-python's replication admin calls, one per run, for tests/cluster/reassignment.rs.

--action reassign --partition P --replicas 3,1,2
    AlterPartitionReassignments for one partition (--replicas none cancels it); prints
    {"error": <error class name or null>}.
--action list
    ListPartitionReassignments for every partition; prints {"ongoing": {"<topic>-<p>":
    {"replicas": [...], "adding_replicas": [...], "removing_replicas": [...]}}}.
--action elect
    ElectLeaders (preferred) for every partition of --topic; prints {"results": {"<p>":
    <error code>}} (0: elected, 84: ELECTION_NOT_NEEDED).

kafka-python is a second, independent implementation of these requests (librdkafka's
Rust binding does not offer them), so the broker is checked against more than our CLI.
"""

from kafka import TopicPartition

from kp_common import admin_client, fail, parse_args, run, succeed


def add_arguments(parser):
    parser.add_argument("--action", required=True, choices=["reassign", "list", "elect"])
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--replicas", default="none", help="comma-separated ids, or none")


def main():
    args = parse_args("kafka-python replication admin", add_arguments)
    admin = admin_client(args.bootstrap, client_id="corelog-test-replica-admin")
    try:
        if args.action == "reassign":
            replicas = (
                None
                if args.replicas == "none"
                else [int(broker) for broker in args.replicas.split(",")]
            )
            partition = TopicPartition(args.topic, args.partition)
            answers = admin.alter_partition_reassignments({partition: replicas})
            if partition not in answers:
                fail("no answer for the partition", answers=answers)
            error = answers[partition]
            succeed({"error": None if error is None else error.__name__})
        elif args.action == "list":
            ongoing = admin.list_partition_reassignments()
            succeed(
                {
                    "ongoing": {
                        f"{tp.topic}-{tp.partition}": state for tp, state in ongoing.items()
                    }
                }
            )
        else:
            response = admin.elect_leaders(0, [args.topic], raise_errors=False)
            results = {}
            for topic, partitions in response.replica_election_results:
                if topic != args.topic:
                    continue
                for partition, error_code, _message in partitions:
                    results[str(partition)] = error_code
            succeed({"results": results})
    finally:
        admin.close()


if __name__ == "__main__":
    run(main)
