// Package franz drives corelog (or any Kafka broker) with franz-go: kgo for producing,
// consuming in groups and transactions, kadm for administration. The broker address comes
// from CORELOG_BOOTSTRAP; tests/go_clients.rs starts a corelog and sets it.
//
// Every client of the package logs through one recorder, which keeps the version of every
// request franz-go wrote. TestMain prints them after the tests, next to the broker's
// ApiVersions ranges: the versions franz-go negotiated with this broker.
package franz

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/corelog/corelog/tests/go/internal/suite"
)

// uniqueName is unique per test run (suite.UniqueName).
func uniqueName(prefix string) string {
	return suite.UniqueName("franz", prefix)
}

// versionRecorder is a kgo.Logger that records the version of every request written (the
// client's debug line "wrote <Api> v<N>"), forwards warnings and errors to the test log,
// and everything to the debug file when one is configured.
type versionRecorder struct {
	sent     suite.SentVersions[string]
	mu       sync.Mutex // orders the writes to debugOut
	debugOut *os.File
}

var recorder = &versionRecorder{}

func (r *versionRecorder) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (r *versionRecorder) Log(level kgo.LogLevel, message string, keyvals ...any) {
	var api string
	var version int16
	if n, _ := fmt.Sscanf(message, "wrote %s v%d", &api, &version); n == 2 {
		r.sent.Record(api, version)
	}
	if r.debugOut != nil {
		r.mu.Lock()
		fmt.Fprintf(r.debugOut, "%s [%s] %s %v\n", time.Now().Format("15:04:05.000"), level, message, keyvals)
		r.mu.Unlock()
	}
}

// commonOptions are every client's: the broker, the recorder, and metadata refreshed at most
// every 250 ms instead of kgo's 5 s (MetadataMinAge), so that a topic created or deleted a
// moment ago shows up without a 5 s wait; kadm's ListTopics answers from that cache too.
func commonOptions() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(suite.Bootstrap()...),
		kgo.WithLogger(recorder),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
}

// newClient is a kgo client on the broker with the recorder as its logger.
func newClient(t *testing.T, options ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append(commonOptions(), options...)
	client, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	return client
}

// newAdmin is a kadm client on its own kgo client, closed when the test ends.
func newAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	client := newClient(t)
	t.Cleanup(client.Close)
	return kadm.NewClient(client)
}

// createTopic creates a topic with `partitions` partitions (replication factor 1, so the
// tests run on a one-node cluster) and fails the test unless the broker created it.
func createTopic(ctx context.Context, t *testing.T, admin *kadm.Client, topic string, partitions int32) {
	t.Helper()
	response, err := admin.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, response.ErrMessage)
	}
}

func TestMain(m *testing.M) {
	os.Exit(suite.Main(m, func(file *os.File) { recorder.debugOut = file }, printVersionTable))
}

// printVersionTable prints, for every API franz-go sent, the versions it used, the broker's
// range and franz-go's own maximum.
func printVersionTable() {
	if !recorder.sent.Sent() {
		return
	}
	brokerRanges := map[string]string{}
	client, err := kgo.NewClient(kgo.SeedBrokers(suite.Bootstrap()...))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		versions, err := kadm.NewClient(client).ApiVersions(ctx)
		cancel()
		client.Close()
		if err == nil {
			for _, broker := range versions.Sorted() {
				broker.EachKeySorted(func(key, min, max int16) {
					brokerRanges[kmsg.NameForKey(key)] = fmt.Sprintf("%d-%d", min, max)
				})
				break
			}
		}
	}
	fmt.Printf("franz-go request versions sent to %s:\n", strings.Join(suite.Bootstrap(), ","))
	fmt.Printf("  %-28s %-10s %-8s %s\n", "API", "broker", "client", "sent")
	recorder.sent.Each(func(api, versions string) {
		clientMax := "?"
		for key := int16(0); key < 100; key++ {
			if kmsg.NameForKey(key) == api {
				if request := kmsg.RequestForKey(key); request != nil {
					clientMax = fmt.Sprintf("0-%d", request.MaxVersion())
				}
			}
		}
		fmt.Printf("  %-28s %-10s %-8s %s\n", api, brokerRanges[api], clientMax, versions)
	})
}
