// Package suite is what the franz-go and Sarama suites share and what does not depend on the
// client: where the broker is (CORELOG_BOOTSTRAP, set by tests/go_clients.rs), unique names,
// each test's deadline and the bounded waits that derive from it, the debug-log switch and
// the table of request versions sent, and the checks of the consume-transform-produce
// transaction tests. Each client package keeps only what speaks its client's API.
package suite

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Timeout bounds each test's whole run; every wait inside derives from it.
const Timeout = 60 * time.Second

// waitInterval is how often WaitFor checks its condition: short next to Timeout, long
// enough not to flood the broker with requests.
const waitInterval = 50 * time.Millisecond

// debugLogVariable, when set to a file path, makes the client write its debug log there.
const debugLogVariable = "CORELOG_GO_DEBUG_LOG"

// Bootstrap is the broker's address list: CORELOG_BOOTSTRAP (comma-separated), or a local
// broker on Kafka's default port.
func Bootstrap() []string {
	if addresses := strings.TrimSpace(os.Getenv("CORELOG_BOOTSTRAP")); addresses != "" {
		return strings.Split(addresses, ",")
	}
	return []string{"127.0.0.1:9092"}
}

var nameSequence atomic.Int64

// UniqueName is unique per test run, so the tests of a run (and reruns against one broker)
// never share topics, groups or transactional ids; `client` keeps the suites apart.
func UniqueName(client, prefix string) string {
	return fmt.Sprintf("%s-%s-%d-%d", client, prefix, time.Now().UnixNano(), nameSequence.Add(1))
}

// Context is the test's deadline: everything the test waits for shares it.
func Context(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// WaitFor polls `condition` until it holds, failing the test at ctx's deadline.
func WaitFor(ctx context.Context, t *testing.T, what string, condition func() bool) {
	t.Helper()
	for !condition() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(waitInterval):
		}
	}
}

// Main runs the tests and returns the exit code for TestMain. When CORELOG_GO_DEBUG_LOG
// names a file, it creates it first and hands it to `useDebugLog`; after the tests it calls
// `report` (the version table).
func Main(m *testing.M, useDebugLog func(*os.File), report func()) int {
	if path := os.Getenv(debugLogVariable); path != "" {
		file, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cannot create %s: %v\n", path, err)
			return 2
		}
		defer file.Close()
		useDebugLog(file)
	}
	code := m.Run()
	report()
	return code
}

// SentVersions records, per API (a name or a key), the request versions a client wrote.
// It is safe for concurrent use: every connection of a client records into it.
type SentVersions[API cmp.Ordered] struct {
	mu   sync.Mutex
	sent map[API]map[int16]bool
}

// Record notes that a request of `api` was written at `version`.
func (s *SentVersions[API]) Record(api API, version int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = map[API]map[int16]bool{}
	}
	if s.sent[api] == nil {
		s.sent[api] = map[int16]bool{}
	}
	s.sent[api][version] = true
}

// Each calls `row` for every API sent, in order, with its versions ("v0,v3").
func (s *SentVersions[API]) Each(row func(api API, versions string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, api := range slices.Sorted(maps.Keys(s.sent)) {
		var versions []string
		for _, version := range slices.Sorted(maps.Keys(s.sent[api])) {
			versions = append(versions, fmt.Sprintf("v%d", version))
		}
		row(api, strings.Join(versions, ","))
	}
}

// Sent reports whether any request was recorded.
func (s *SentVersions[API]) Sent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent) > 0
}
