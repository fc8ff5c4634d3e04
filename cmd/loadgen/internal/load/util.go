package load

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// ParseIPs parses a comma-separated list of addresses and ranges
// ("127.0.0.1-127.0.0.8,127.0.1.1") into addresses for Config.SourceIPs.
func ParseIPs(s string) ([]net.IP, error) {
	var out []net.IP
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(lo).To4()
		if a == nil {
			return nil, fmt.Errorf("%w: source address %q", ErrConfig, lo)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b := net.ParseIP(hi).To4()
		if b == nil || !a.Mask(net.CIDRMask(24, 32)).Equal(b.Mask(net.CIDRMask(24, 32))) || b[3] < a[3] {
			return nil, fmt.Errorf("%w: source range %q (same /24, low to high)", ErrConfig, part)
		}
		for i := int(a[3]); i <= int(b[3]); i++ {
			ip := make(net.IP, 4)
			copy(ip, a)
			ip[3] = byte(i)
			out = append(out, ip)
		}
	}
	return out, nil
}

// CommandOutage returns an Outage that runs command with sh -c (for example
// "systemctl restart mosquitto" or "kill -9 $(pidof broker)"), its output going
// to stderr.
func CommandOutage(command string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "sh", "-c", command)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("outage command: %w", err)
		}
		return nil
	}
}
