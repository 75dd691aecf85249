"""KafkaAdminClient.describe_log_dirs against a single broker: its one log directory
(the absolute --data-dir, no error, the volume's total and usable bytes from v4) and,
per hosted partition, the size of its log and its offset lag (0: the log end is never
behind the high watermark). Asked three ways: every partition named (what
describe_log_dirs() sends after a Metadata request), topics=null (every partition the
broker hosts, as kafka-topics' reassignment tool asks), and a named topic that does
not exist, which gets an empty topic list rather than an error (Kafka only filters its
logs by the names asked).
"""

from kafka.protocol.admin import DescribeLogDirsRequest

from kp_common import admin_client, create_topic, expect, parse_args, produce, run, succeed

PARTITIONS = 2
MESSAGES_PER_PARTITION = 20
VALUE_BYTES = 100


def only_result(answer, what):
    """The single broker's single log dir result, as a dict."""
    expect(len(answer) == 1, f"{what}: one broker answered", answer=answer)
    log_dirs = answer[0]["log_dirs"]
    expect(len(log_dirs) == 1, f"{what}: one log dir", answer=answer)
    return log_dirs[0]


def partitions_of(result, topic):
    """{partition: [size, offset_lag, is_future_key]} of `topic` in a log dir result."""
    matches = [entry for entry in result["topics"] if entry["name"] == topic]
    expect(len(matches) <= 1, f"{topic} listed once", result=result)
    if not matches:
        return {}
    return {
        str(p["partition_index"]): [p["partition_size"], p["offset_lag"], p["is_future_key"]]
        for p in matches[0]["partitions"]
    }


def summary_of(result, topic):
    return {
        "error_code": result["error_code"],
        "log_dir": result["log_dir"],
        "total_bytes": result.get("total_bytes"),
        "usable_bytes": result.get("usable_bytes"),
        "partitions": partitions_of(result, topic),
        "topics": sorted(entry["name"] for entry in result["topics"]),
    }


def main():
    args = parse_args(__doc__)
    topic = args.topic
    admin = admin_client(args.bootstrap)
    create_topic(admin, topic, PARTITIONS)
    produce(
        args.bootstrap,
        topic,
        [
            (i % PARTITIONS, bytes([ord("a") + i % 26]) * VALUE_BYTES)
            for i in range(PARTITIONS * MESSAGES_PER_PARTITION)
        ],
    )

    # Every topic's partitions named, from Metadata.
    named = only_result(admin.describe_log_dirs(), "describe_log_dirs()")
    # topics=null: the broker lists what it hosts.
    hosted = only_result(
        admin._manager.run(admin._async_describe_log_dirs, None, None), "topics=null"
    )
    # Partition 7 does not exist: left out, like any partition not hosted here.
    some = only_result(
        admin.describe_log_dirs(topic_partitions={topic: [1, 7]}), "one partition named"
    )
    unknown = only_result(
        admin.describe_log_dirs(topic_partitions={"kp-no-such-topic": [0, 1]}),
        "unknown topic",
    )
    # The request as sent on the wire: the version kafka-python chose.
    version = admin._manager.broker_version_data.api_version(DescribeLogDirsRequest)

    succeed(
        {
            "version": version,
            "named": summary_of(named, topic),
            "hosted": summary_of(hosted, topic),
            "some": summary_of(some, topic),
            "unknown": {
                "error_code": unknown["error_code"],
                "topics": unknown["topics"],
            },
        }
    )


if __name__ == "__main__":
    run(main)
