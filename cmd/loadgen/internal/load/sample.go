package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RaiseFileLimit raises the soft open-file limit to the hard limit and returns both.
func RaiseFileLimit() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, fmt.Errorf("getrlimit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return r.Cur, r.Max, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return uint64(r.Cur), uint64(r.Max), nil
}

// limitReason explains a dial error that means a local resource limit stops the
// run, or returns "" for an ordinary error.
func limitReason(err error) string {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		soft, hard, _ := RaiseFileLimit()
		return fmt.Sprintf("open-file limit reached (soft %d, hard %d): raise it with ulimit -Hn as root, or run fewer connections per process", soft, hard)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "out of local ports for this source address: spread connections with --source-ips 127.0.0.1-127.0.0.8"
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
		return "the kernel is out of socket buffers or memory"
	}
	return ""
}

// procStats reads CPU seconds (utime+stime) and RSS bytes of a process from /proc.
func procStats(pid int) (cpu float64, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	const clockTicks = 100 // USER_HZ on Linux
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	return (ut + st) / clockTicks, pages * int64(os.Getpagesize()), nil
}

// brokerMetrics is what loadgen reads from the broker's Prometheus /metrics.
type brokerMetrics struct {
	conns, goroutines, memory float64
}

// scrapeMetrics GETs http://addr/metrics and picks the connections gauge (connMetric,
// or a guess), go_goroutines and the resident memory.
func scrapeMetrics(ctx context.Context, client *http.Client, addr, connMetric string) (brokerMetrics, error) {
	m := brokerMetrics{conns: -1, goroutines: -1, memory: -1}
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if !strings.HasSuffix(url, "/metrics") {
		url = strings.TrimSuffix(url, "/") + "/metrics"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return m, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	sums := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if j := strings.IndexByte(line, '{'); j >= 0 && j < len(name) {
			name = line[:j]
			if k := strings.LastIndexByte(line, '}'); k > j {
				rest = strings.TrimSpace(line[k+1:])
			}
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		sums[name] += v
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if v, ok := sums["go_goroutines"]; ok {
		m.goroutines = v
	}
	if v, ok := sums["process_resident_memory_bytes"]; ok {
		m.memory = v
	} else if v, ok := sums["go_memstats_sys_bytes"]; ok {
		m.memory = v
	}
	if connMetric != "" {
		if v, ok := sums[connMetric]; ok {
			m.conns = v
		}
		return m, nil
	}
	for _, n := range []string{"courier_connections", "courier_broker_connections", "courier_clients_connected", "mqtt_connections", "mqtt_clients_connected"} {
		if v, ok := sums[n]; ok {
			m.conns = v
			return m, nil
		}
	}
	for n, v := range sums {
		if strings.HasSuffix(n, "_connections") || strings.HasSuffix(n, "clients_connected") {
			m.conns = v
			break
		}
	}
	return m, nil
}

// pollInterval is how often waits on counters look again.
const pollInterval = 5 * time.Millisecond
