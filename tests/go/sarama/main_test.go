// Package sarama drives corelog (or any Kafka broker) with IBM/sarama: the idempotent and
// the transactional SyncProducer, the Consumer (read_committed too), ConsumerGroup with its
// range and sticky balancers, the OffsetManager and the ClusterAdmin. The broker address comes from CORELOG_BOOTSTRAP;
// tests/go_clients.rs starts a corelog and sets it.
//
// Sarama builds each request at the version its config.Version implies and lowers it to the
// broker's ApiVersions range. Every client of the package dials through a recorder that
// reads the API key and version of every request written, and TestMain prints them after
// the tests next to the broker's ranges.
package sarama

import (
	"encoding/binary"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// kafkaVersion is the newest Kafka version sarama v1.61 knows; sarama negotiates every
// request down to the broker's ApiVersions ranges from there.
var kafkaVersion = sarama.MaxVersion

// uniqueName is unique per test run (suite.UniqueName).
func uniqueName(prefix string) string {
	return suite.UniqueName("sarama", prefix)
}

// newConfig is sarama's default config at kafkaVersion, dialing through the recorder.
func newConfig() *sarama.Config {
	config := sarama.NewConfig()
	config.Version = kafkaVersion
	config.ClientID = "corelog-sarama-suite"
	config.Net.Proxy.Enable = true
	config.Net.Proxy.Dialer = recorder
	config.Metadata.Retry.Backoff = 100 * time.Millisecond
	return config
}

func newClient(t *testing.T, config *sarama.Config) sarama.Client {
	t.Helper()
	client, err := sarama.NewClient(suite.Bootstrap(), config)
	if err != nil {
		t.Fatalf("sarama.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func newAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(suite.Bootstrap(), newConfig())
	if err != nil {
		t.Fatalf("sarama.NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}

func createTopic(t *testing.T, admin sarama.ClusterAdmin, topic string, partitions int32) {
	t.Helper()
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// versionRecorder dials plain TCP and reads every request frame the client writes
// (length, api key, api version, ...), keeping the versions per API key.
type versionRecorder struct {
	sent suite.SentVersions[int16]
}

var recorder = &versionRecorder{}

func (r *versionRecorder) Dial(network, address string) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: conn, recorder: r}, nil
}

// recordingConn parses the request stream written on one connection: a frame is a 4-byte
// length and that many bytes, starting with the api key and version (int16 each).
type recordingConn struct {
	net.Conn
	recorder *versionRecorder
	header   []byte // the start of the current frame, up to 8 bytes
	skip     int    // bytes of the current frame still to pass over
}

func (c *recordingConn) Write(data []byte) (int, error) {
	rest := data
	for len(rest) > 0 {
		if c.skip > 0 {
			n := min(c.skip, len(rest))
			c.skip -= n
			rest = rest[n:]
			continue
		}
		n := min(8-len(c.header), len(rest))
		c.header = append(c.header, rest[:n]...)
		rest = rest[n:]
		if len(c.header) == 8 {
			length := int(binary.BigEndian.Uint32(c.header[0:4]))
			c.recorder.sent.Record(int16(binary.BigEndian.Uint16(c.header[4:6])), int16(binary.BigEndian.Uint16(c.header[6:8])))
			c.skip = length - 4
			c.header = c.header[:0]
		}
	}
	return c.Conn.Write(data)
}

func TestMain(m *testing.M) {
	useDebugLog := func(file *os.File) {
		sarama.Logger = log.New(file, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
	os.Exit(suite.Main(m, useDebugLog, printVersionTable))
}

// printVersionTable prints, for every API sarama sent, the versions it used next to the
// broker's range.
func printVersionTable() {
	if !recorder.sent.Sent() {
		return
	}
	brokerRanges := map[int16]string{}
	config := sarama.NewConfig()
	config.Version = kafkaVersion
	if client, err := sarama.NewClient(suite.Bootstrap(), config); err == nil {
		if brokers := client.Brokers(); len(brokers) > 0 {
			broker := brokers[0]
			if err := broker.Open(config); err == nil || err == sarama.ErrAlreadyConnected {
				if response, err := broker.ApiVersions(&sarama.ApiVersionsRequest{Version: 3,
					ClientSoftwareName: "sarama", ClientSoftwareVersion: "1.61.1"}); err == nil {
					for _, key := range response.ApiKeys {
						brokerRanges[key.ApiKey] = fmt.Sprintf("%d-%d", key.MinVersion, key.MaxVersion)
					}
				}
			}
		}
		_ = client.Close()
	}
	fmt.Printf("sarama (config.Version %s) request versions sent to %s:\n", kafkaVersion, strings.Join(suite.Bootstrap(), ","))
	fmt.Printf("  %-4s %-10s %s\n", "key", "broker", "sent")
	recorder.sent.Each(func(key int16, versions string) {
		fmt.Printf("  %-4d %-10s %s  (%s)\n", key, brokerRanges[key], versions, apiName(key))
	})
}

// apiName names the API keys sarama sends.
func apiName(key int16) string {
	names := map[int16]string{
		0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
		9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
		13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
		18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords",
		22: "InitProducerId", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn",
		28: "TxnOffsetCommit", 32: "DescribeConfigs", 42: "DeleteGroups", 60: "DescribeCluster",
		75: "DescribeTopicPartitions",
	}
	if name, ok := names[key]; ok {
		return name
	}
	return "?"
}
