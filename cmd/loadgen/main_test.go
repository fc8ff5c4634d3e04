package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/testbroker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// badger (linked through the broker's store) starts glog's flush goroutine at init
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*loggingT).flushDaemon"),
	)
}

func files(t *testing.T) (stdout, stderr *os.File) {
	t.Helper()
	dir := t.TempDir()
	var err error
	if stdout, err = os.Create(filepath.Join(dir, "stdout")); err != nil {
		t.Fatal(err)
	}
	if stderr, err = os.Create(filepath.Join(dir, "stderr")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdout.Close(); stderr.Close() })
	return stdout, stderr
}

func read(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunPubSubWritesTableJSONAndHTML(t *testing.T) {
	srv := testbroker.Start(t)
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.html")
	stdout, stderr := files(t)
	code := run([]string{"--broker", srv.TCPAddr, "--qos", "1", "--count", "50", "--duration", "0",
		"--sample", "50ms", "--json", jsonPath, "--report", htmlPath, "pubsub"}, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, read(t, stderr))
	}
	if out := read(t, stdout); !strings.Contains(out, "loss 0.000%") || strings.Contains(out, "\r") {
		t.Fatalf("table (no live progress when stdout is a file):\n%s", out)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res load.Result
	if err := json.Unmarshal(b, &res); err != nil || res.Msgs.Unique != 50 || res.Msgs.Acked != 50 {
		t.Fatalf("json: %v %+v", err, res.Msgs)
	}
	if h, err := os.ReadFile(htmlPath); err != nil || !strings.Contains(string(h), "Latency by percentile") {
		t.Fatalf("html: %v", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	cases := [][]string{
		{},
		{"--qos", "3", "pubsub"},
		{"--source-ips", "127.0.0.9-127.0.0.1", "conn"},
		{"--no-such-flag", "conn"},
		{"dance"},
	}
	for _, args := range cases {
		stdout, stderr := files(t)
		if code := run(args, stdout, stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestRunReportsNoConnection(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithPassword("right"))
	stdout, stderr := files(t)
	code := run([]string{"--broker", srv.TCPAddr, "--conns", "3", "--hold", "0s", "--password", "wrong", "--username", "u", "conn"}, stdout, stderr)
	if code != 1 || !strings.Contains(read(t, stderr), "no client could connect") {
		t.Fatalf("exit %d, stderr %s", code, read(t, stderr))
	}
	if !strings.Contains(read(t, stdout), "auth err") {
		t.Fatalf("no summary:\n%s", read(t, stdout))
	}
}
