"""KafkaAdminClient against the group coordinator: ListGroups, DescribeGroups (Stable with
one member, then Empty), OffsetFetch of what the member committed; DeleteGroups,
OffsetDelete and admin commits refused while the member is active (as Kafka does),
deletes accepted once the group is empty, and what a deleted group looks like afterwards.
"""

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from kp_common import (
    Deadline,
    admin_client,
    create_topic,
    expect,
    fail,
    group_consumer,
    parse_args,
    poll_records,
    produce,
    run,
    subscribe,
    succeed,
)

PARTITIONS = 2
MESSAGES = 10
MEMBER_CLIENT_ID = "kp-admin-member"


def find_group(groups, group):
    matches = [entry for entry in groups if entry["group_id"] == group]
    return matches[0] if matches else None


def described(admin, group):
    descriptions = admin.describe_groups([group])
    expect(
        group in descriptions,
        "DescribeGroups did not answer for the group",
        answer=descriptions,
    )
    return descriptions[group]


def assigned_partitions(member_assignment):
    """{topic: sorted partitions} from a decoded ConsumerProtocolAssignment dict."""
    expect(
        isinstance(member_assignment, dict),
        "member_assignment is not a consumer-protocol assignment",
        member_assignment=member_assignment,
    )
    return {
        entry["topic"]: sorted(entry["partitions"])
        for entry in member_assignment["assigned_partitions"]
    }


def error_name(errors, tp):
    """The name of the error class an admin call answered for `tp` ("NoError" on success)."""
    error = errors.get(tp)
    return getattr(error, "__name__", repr(error))


def offsets_as_json(offsets):
    return {f"{tp.topic}/{tp.partition}": [oam.offset, oam.metadata] for tp, oam in offsets.items()}


def main():
    args = parse_args(__doc__)
    topic, group = args.topic, args.group
    admin = admin_client(args.bootstrap)
    create_topic(admin, topic, PARTITIONS)
    produce(args.bootstrap, topic, [(i % PARTITIONS, f"m-{i}".encode()) for i in range(MESSAGES)])
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    # One active member that owns both partitions and has committed offsets.
    consumer = group_consumer(args.bootstrap, group, MEMBER_CLIENT_ID)
    subscribe(consumer, topic)
    consumed = 0
    deadline = Deadline(15)
    while consumed < MESSAGES or consumer.assignment() != {tp0, tp1}:
        if deadline.expired():
            fail("the member did not get both partitions and all messages", consumed=consumed)
        consumed += len(poll_records(consumer))
    commits = {
        tp0: OffsetAndMetadata(3, "meta-0", -1),
        tp1: OffsetAndMetadata(5, "meta-1", -1),
    }
    consumer.commit(commits)
    member_id = consumer.group_metadata().member_id
    summary = {"member_id": member_id}

    # ListGroups: the group is listed as a consumer group (Stable from v4 on).
    listed = find_group(admin.list_groups(), group)
    expect(listed is not None, "ListGroups does not list the active group", group=group)
    expect(listed["protocol_type"] == "consumer", "ListGroups protocol_type", listed=listed)
    expect(
        listed.get("group_state") in (None, "Stable"),
        "ListGroups state of a group with an active member",
        listed=listed,
    )
    summary["listed"] = listed

    # DescribeGroups while the member is active.
    description = described(admin, group)
    expect(description["error"] is None, "DescribeGroups error", description=description)
    expect(
        description["group_state"] == "Stable",
        "state with an active member",
        description=description,
    )
    expect(description["protocol_type"] == "consumer", "protocol_type", description=description)
    expect(description["protocol_data"] == "range", "chosen assignor", description=description)
    members = description["members"]
    expect(len(members) == 1, "member count", description=description)
    member = members[0]
    expect(member["member_id"] == member_id, "member_id", member=member, expected=member_id)
    expect(member["client_id"] == MEMBER_CLIENT_ID, "client_id", member=member)
    expect(bool(member["client_host"]), "client_host is empty", member=member)
    assignment = assigned_partitions(member["member_assignment"])
    expect(assignment == {topic: [0, 1]}, "member_assignment", assignment=assignment)
    summary["stable"] = {
        "state": description["group_state"],
        "protocol": description["protocol_data"],
        "client_id": member["client_id"],
        "client_host": member["client_host"],
        "assignment": assignment,
    }

    # OffsetFetch through the admin client equals what the member committed.
    fetched = admin.list_group_offsets(group)
    expect(group in fetched, "OffsetFetch did not answer for the group", fetched=fetched)
    fetched_offsets = offsets_as_json(fetched[group])
    expect(
        fetched_offsets == offsets_as_json(commits),
        "committed offsets read back differ",
        fetched=fetched_offsets,
        committed=offsets_as_json(commits),
    )
    summary["offsets"] = fetched_offsets

    # Kafka refuses to delete a group with members, and offsets of a subscribed topic.
    refused = admin.delete_groups([group])
    expect(
        refused.get(group) == "NonEmptyGroupError",
        "DeleteGroups of an active group",
        answer=refused,
    )
    refused_offsets = admin.delete_group_offsets(group, [tp0])
    expect(
        error_name(refused_offsets, tp0) == "GroupSubscribedToTopicError",
        "OffsetDelete of a topic the active member subscribes to",
        answer=refused_offsets,
    )
    # An admin commit (generation -1, no member id) to a group with members: Kafka
    # answers UNKNOWN_MEMBER_ID, and the committed offsets stay as they were.
    altered = admin.alter_group_offsets(group, {tp0: OffsetAndMetadata(0, "admin", -1)})
    expect(
        error_name(altered, tp0) == "UnknownMemberIdError",
        "an admin commit to an active group",
        answer=altered,
    )
    unchanged = offsets_as_json(admin.list_group_offsets(group)[group])
    expect(unchanged == fetched_offsets, "a refused commit changed offsets", offsets=unchanged)
    summary["refused_while_active"] = [
        refused[group],
        error_name(refused_offsets, tp0),
        error_name(altered, tp0),
    ]

    # LeaveGroup on close: the group is Empty but keeps its offsets.
    consumer.close()
    description = described(admin, group)
    expect(
        description["group_state"] == "Empty",
        "state after the only member left",
        description=description,
    )
    expect(
        description["members"] == [],
        "members after the only member left",
        description=description,
    )

    deleted_offsets = admin.delete_group_offsets(group, [tp0])
    expect(
        error_name(deleted_offsets, tp0) == "NoError",
        "OffsetDelete on the empty group",
        answer=deleted_offsets,
    )
    remaining = offsets_as_json(admin.list_group_offsets(group)[group])
    expect(
        remaining == offsets_as_json({tp1: commits[tp1]}),
        "offsets after OffsetDelete of partition 0",
        remaining=remaining,
    )

    deleted = admin.delete_groups([group])
    expect(deleted == {group: "OK"}, "DeleteGroups of the empty group", answer=deleted)
    expect(
        find_group(admin.list_groups(), group) is None,
        "ListGroups still lists the deleted group",
    )
    description = described(admin, group)
    # kafka-python 3 negotiates DescribeGroups v6, where Kafka 4.4 answers an unknown
    # group with state Dead, GROUP_ID_NOT_FOUND and "Group <id> not found." (KIP-1043;
    # before v6: Dead, no error).
    error = description["error"] or ""
    expect(
        description["group_state"] == "Dead"
        and "GroupIdNotFoundError" in error
        and f"Group {group} not found." in error,
        "DescribeGroups of a deleted group (Kafka 4.4, v6: Dead, GROUP_ID_NOT_FOUND)",
        description=description,
    )
    after_delete = admin.list_group_offsets(group)
    expect(after_delete == {group: {}}, "a deleted group still has offsets", answer=after_delete)
    again = admin.delete_groups([group])
    expect(
        again == {group: "GroupIdNotFoundError"},
        "DeleteGroups of a deleted group",
        answer=again,
    )
    admin.close()

    summary["empty_state"] = "Empty"
    summary["deleted"] = deleted[group]
    summary["after_delete"] = {"state": description["group_state"], "delete_again": again[group]}
    succeed(summary)


if __name__ == "__main__":
    run(main)
