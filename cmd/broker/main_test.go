package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// badger (the store) starts glog's flush goroutine at init
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*loggingT).flushDaemon"),
	)
}

func envOf(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedenceIsFileThenEnvThenFlag(t *testing.T) {
	file := writeFile(t, "broker.yaml", `
data_dir: /from/file
limits:
  max_offline_queue: 100
  keepalive_floor: 30s
  max_packet_size: 2048
log:
  level: warn
`)
	env := envOf(map[string]string{
		"COURIER_CONFIG":            file,
		"COURIER_DATA_DIR":          "/from/env",
		"COURIER_MAX_OFFLINE_QUEUE": "200",
	})
	cfg, err := loadConfig([]string{"--max-offline-queue", "300"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"file only", cfg.Limits.MaxPacketSize, uint32(2048)},
		{"file only duration", cfg.Limits.KeepaliveFloor, 30 * time.Second},
		{"file only log", cfg.Log.Level, "warn"},
		{"env beats file", cfg.DataDir, "/from/env"},
		{"flag beats env and file", cfg.Limits.MaxOfflineQueue, uint16(300)},
		{"default untouched", cfg.Limits.ReceiveMaximum, uint16(1024)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestBadConfigReportsEveryProblemAndExits2(t *testing.T) {
	file := writeFile(t, "bad.yaml", "limits:\n  max_ofline_queue: 5\n")
	var stderr bytes.Buffer
	code := run(context.Background(), []string{
		"--config", file, "--mqtt-addr", "nope", "--log-format", "xml", "--keepalive-floor", "soon",
	}, envOf(nil), &bytes.Buffer{}, &stderr)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	out := stderr.String()
	for _, want := range []string{"max_ofline_queue", `addr "nope"`, `"xml"`, `"soon"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

func TestHelpDocumentsEverySetting(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, envOf(nil), &out, &out); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), "-"+s.name) || !strings.Contains(out.String(), s.env()) {
			t.Errorf("--help lacks %s / %s", s.name, s.env())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunServesUntilCancelledThenShutsDownCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--mqtt-addr", "127.0.0.1:0", "--ws-addr", "", "--ops-addr", "",
			"--data-dir", "", "--log-format", "json"}, envOf(nil), &bytes.Buffer{}, logs)
	}()
	// Wait for the listening line, then talk MQTT to the address it names.
	var addr string
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for addr == "" {
		select {
		case <-tick.C:
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"msg":"listening"`) {
					_, rest, _ := strings.Cut(line, `"addr":"`)
					addr, _, _ = strings.Cut(rest, `"`)
				}
			}
		case code := <-done:
			t.Fatalf("run exited early with %d:\n%s", code, logs.String())
		case <-deadline:
			t.Fatalf("broker never listened:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "anonymous clients are allowed") {
		t.Errorf("no anonymous-mode warning in logs:\n%s", logs.String())
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 1, 'x'})
	ack := make([]byte, 4)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after cancel:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no shutdown after cancel")
	}
}

func TestBinaryExitsTwoOnBadConfigWithoutAStackTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "broker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--mqtt-addr", "0.0.0.0:1883", "--max-packet-size", "lots")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("want exit 2, got %v\n%s", err, stderr.String())
	}
	out := stderr.String()
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
		t.Fatalf("stack trace on a bad config:\n%s", out)
	}
	for _, want := range []string{"local-only", `"lots"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

func TestKeysGenerateWritesAKeyPairTheBrokerCanUse(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"keys", "generate", "--dir", dir, "--kid", "k1"}, envOf(nil), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, f := range []string{"k1.key", "k1.pub"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	// The public key alone is enough for a verify-only broker.
	file := writeFile(t, "b.yaml", "auth:\n  keys:\n    - {id: k1, public_key_file: "+filepath.Join(dir, "k1.pub")+"}\n")
	cfg, err := loadConfig([]string{"--config", file}, envOf(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("config with the generated public key: %v", err)
	}
	if !cfg.AuthEnabled() {
		t.Fatal("auth not enabled by keys")
	}
	// Generating again refuses to overwrite.
	if code := run(context.Background(), []string{"keys", "generate", "--dir", dir, "--kid", "k1"}, envOf(nil), &out, &errOut); code == 0 {
		t.Fatal("overwrote an existing key")
	}
	if code := run(context.Background(), []string{"keys", "apikey"}, envOf(nil), &out, &errOut); code != 2 {
		t.Fatalf("apikey without identity: exit %d, want 2", code)
	}
}
